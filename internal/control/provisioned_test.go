package control_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/invoke"
)

// withInvoke is e's control plane with the invocation service wired as Config.Invoke, as the
// server wires it (provisioned concurrency and event invoke configs ask it).
func (e *env) withInvoke() *control.Plane {
	return control.New(control.Config{Store: e.st, View: e.view, Account: e.account, Log: slog.New(slog.DiscardHandler), Invoke: e.view})
}

// pageOf is a list request's page, read without fault.
func pageOf(p control.Page) func() (control.Page, error) {
	return func() (control.Page, error) { return p, nil }
}

// badPage is a list request whose paging parameters are refused.
func badPage() (control.Page, error) {
	return control.Page{}, apierr.Validation("1 validation error detected: Value '0' at 'maxItems'")
}

func TestProvisioned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	plane := e.withInvoke()
	for _, name := range []string{"fn", "capped"} {
		e.function(t, name)
		e.version(t, name, 1)
		e.version(t, name, 2)
		// live points to version 2: version 1 and live are provisioned side by side below (one
		// version is provisioned once, as on AWS).
		if _, err := plane.Aliases.Create(ctx, control.Target{Op: "CreateAlias", Name: name}, control.AliasInput{Name: "live", FunctionVersion: ptr("2")}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := e.st.Functions().Get(ctx, "capped")
	if err != nil {
		t.Fatal(err)
	}
	f.ReservedConcurrency = ptr(1)
	rev, err := e.st.Functions().Update(ctx, f.Function, f.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.view.Await(ctx, invoke.Functions, rev); err != nil { // the account's unreserved count
		t.Fatal(err)
	}
	svc := plane.Provisioned
	at := func(name, q string) control.Target {
		return control.Target{Op: "PutProvisionedConcurrencyConfig", Name: name, Qualifier: q}
	}
	n := func(v int) control.ProvisionedInput {
		return control.ProvisionedInput{ProvisionedConcurrentExecutions: ptr(v)}
	}

	// Rejections store nothing.
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.ProvisionedInput
		code, msg string
	}{
		{"no count", at("fn", "1"), control.ProvisionedInput{}, "ValidationException", "provisionedConcurrentExecutions"},
		{"zero", at("fn", "1"), n(0), "ValidationException", "greater than or equal to 1"},
		{"no qualifier", at("fn", ""), n(1), "ValidationException", "Value null at 'qualifier'"},
		{"$LATEST", at("fn", "$LATEST"), n(1), "InvalidParameterValueException", "unpublished function versions"},
		{"missing version", at("fn", "9"), n(1), "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:9"},
		{"missing alias", at("fn", "nope"), n(1), "ResourceNotFoundException", "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:fn:nope"},
		{"qualifier mismatch", at("fn:1", "live"), n(1), "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."},
		{"missing function", at("nope", "1"), n(1), "ResourceNotFoundException", "function:nope"},
		{"another account", at("arn:aws:lambda:us-east-1:210987654321:function:fn", "1"), n(1), "AccessDeniedException", ""},
		{"over the reserved", at("capped", "1"), n(2), "InvalidParameterValueException", "greater than the reservedConcurrentExecution"},
		{"over the unreserved", at("fn", "1"), n(1000), "InvalidParameterValueException", "account's unreserved concurrency [999]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Put(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	list, err := svc.List(ctx, at("fn", ""), pageOf(control.Page{MaxItems: 50}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ProvisionedConcurrencyConfigs) != 0 {
		t.Fatalf("configs after rejections: %+v", list)
	}
	_, err = svc.Get(ctx, at("fn", "1"))
	wantErr(t, err, "ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config")

	// A put is in the invocation view when it returns (the pool starts its environments from
	// there); none is ready yet.
	put, err := svc.Put(ctx, at("fn", "1"), n(2))
	if err != nil {
		t.Fatal(err)
	}
	if put.RequestedProvisionedConcurrentExecutions != 2 || put.Status != "IN_PROGRESS" || put.FunctionArn != "" {
		t.Fatalf("put = %+v", put)
	}
	if requested, _, err := e.view.Provisioned(ctx, "fn", "1"); err != nil || requested != 2 {
		t.Fatalf("view after put: %d, %v", requested, err)
	}
	got, err := svc.Get(ctx, at("fn", "1"))
	if err != nil || got.RequestedProvisionedConcurrentExecutions != 2 || got.LastModified != put.LastModified {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := svc.Put(ctx, at("fn", "live"), n(1)); err != nil {
		t.Fatal(err)
	}
	// AWS's conflicts: the version an alias with a config points to, an alias on a version
	// with one.
	_, err = svc.Put(ctx, at("fn", "2"), n(1))
	wantErr(t, err, "ResourceConflictException", "Version is pointed by a Provisioned Concurrency alias")
	if _, err := plane.Aliases.Create(ctx, control.Target{Op: "CreateAlias", Name: "fn"}, control.AliasInput{Name: "one", FunctionVersion: ptr("1")}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Put(ctx, at("fn", "one"), n(1))
	wantErr(t, err, "ResourceConflictException", "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
	if _, err := svc.Put(ctx, at("capped", "1"), n(1)); err != nil {
		t.Fatalf("put within the reserved: %v", err)
	}

	// Listing: by qualifier, in pages; the list ignores the Qualifier parameter.
	list, err = svc.List(ctx, at("fn", "live"), pageOf(control.Page{MaxItems: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ProvisionedConcurrencyConfigs) != 1 || list.ProvisionedConcurrencyConfigs[0].FunctionArn != e.account.FunctionARN("fn", "1") || list.NextMarker != "1" {
		t.Fatalf("first page %+v", list)
	}
	list, err = svc.List(ctx, at("fn", ""), pageOf(control.Page{MaxItems: 1, Marker: list.NextMarker}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ProvisionedConcurrencyConfigs) != 1 || list.ProvisionedConcurrencyConfigs[0].FunctionArn != e.account.FunctionARN("fn", "live") || list.NextMarker != "" {
		t.Fatalf("second page %+v", list)
	}
	_, err = svc.List(ctx, at("fn:1", ""), pageOf(control.Page{MaxItems: 1}))
	wantErr(t, err, "InvalidParameterValueException", "must not carry a qualifier")
	// A missing function is refused before bad paging parameters.
	_, err = svc.List(ctx, at("nope", ""), badPage)
	wantErr(t, err, "ResourceNotFoundException", "function:nope")
	_, err = svc.List(ctx, at("fn", ""), badPage)
	wantErr(t, err, "ValidationException", "maxItems")

	// A delete is out of the view when it returns, and a put in it again; deleting again finds
	// nothing. (Several rounds: the watch is often fast enough on its own.)
	for i := range 10 {
		if err := svc.Delete(ctx, at("fn", "1")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.view.Provisioned(ctx, "fn", "1"); !errors.Is(err, invoke.ErrNotFound) {
			t.Fatalf("view after delete %d: %v", i, err)
		}
		if i == 9 {
			break
		}
		if _, err := svc.Put(ctx, at("fn", "1"), n(3+i)); err != nil {
			t.Fatal(err)
		}
		if requested, _, err := e.view.Provisioned(ctx, "fn", "1"); err != nil || requested != 3+i {
			t.Fatalf("view after put %d: %d, %v", i, requested, err)
		}
	}
	// Deleting a config that does not exist succeeds, as on AWS.
	wantErr(t, svc.Delete(ctx, at("fn", "1")), "", "")
	wantErr(t, svc.Delete(ctx, at("fn", "$LATEST")), "InvalidParameterValueException", "The function resource provided must be an alias or a published version.")
}
