package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/flint-run/flint/internal/control"
)

func TestPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.function(t, "fn")
	e.version(t, "fn", 1)
	e.alias(t, "fn", "live", "1")
	svc := e.plane.Policies
	fn := control.Target{Op: "AddPermission", Name: "fn"}
	at := func(q string) control.Target { return control.Target{Op: "AddPermission", Name: "fn", Qualifier: q} }
	perm := func(sid string) control.PermissionInput {
		return control.PermissionInput{StatementID: ptr(sid), Action: ptr("lambda:InvokeFunction"), Principal: ptr("s3.amazonaws.com")}
	}
	with := func(in control.PermissionInput, f func(*control.PermissionInput)) control.PermissionInput {
		f(&in)
		return in
	}

	st, err := svc.Add(ctx, fn, with(perm("s3"), func(in *control.PermissionInput) {
		in.SourceArn, in.SourceAccount = ptr("arn:aws:s3:::bucket"), ptr("123456789012")
	}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	if want := `{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:fn","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"},"StringEquals":{"AWS:SourceAccount":"123456789012"}}}`; string(b) != want {
		t.Fatalf("statement %s\nwant      %s", b, want)
	}

	// Rejections leave the policy as it was.
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.PermissionInput
		code, msg string
	}{
		{"no statement id", fn, with(perm(""), func(in *control.PermissionInput) { in.StatementID = nil }), "ValidationException", "Value null at 'statementId'"},
		{"empty action", fn, with(perm("x"), func(in *control.PermissionInput) { in.Action = ptr("") }), "ValidationException", "Value null at 'action'"},
		{"no principal", fn, with(perm("x"), func(in *control.PermissionInput) { in.Principal = nil }), "ValidationException", "Value null at 'principal'"},
		{"bad statement id", fn, perm("a b"), "ValidationException", "at 'statementId'"},
		{"long statement id", fn, perm(strings.Repeat("a", 101)), "ValidationException", "at 'statementId' failed to satisfy constraint: Member must have length less than or equal to 100"},
		{"long bad statement id", fn, perm(strings.Repeat("a", 100) + "!"), "ValidationException", "2 validation errors detected"},
		{"bad action", fn, with(perm("x"), func(in *control.PermissionInput) { in.Action = ptr("s3:GetObject") }), "ValidationException", "at 'action'"},
		{"bad auth type", fn, with(perm("x"), func(in *control.PermissionInput) { in.FunctionURLAuthType = ptr("OPEN") }), "ValidationException", "at 'functionUrlAuthType'"},
		{"bad source account", fn, with(perm("x"), func(in *control.PermissionInput) { in.SourceAccount = ptr("12") }), "ValidationException", "at 'sourceAccount'"},
		{"bad principal", fn, with(perm("x"), func(in *control.PermissionInput) { in.Principal = ptr("nobody") }), "InvalidParameterValueException", "principal was invalid"},
		{"$LATEST", at("$LATEST"), perm("x"), "InvalidParameterValueException", "do not support adding policies for $LATEST"},
		{"missing version", at("9"), perm("x"), "ResourceNotFoundException", "function:fn:9"},
		{"missing alias", at("nope"), perm("x"), "ResourceNotFoundException", "function:fn:nope"},
		{"bad qualifier", at("a!b"), perm("x"), "ValidationException", "at 'qualifier'"},
		{"qualifiers disagree", control.Target{Op: "AddPermission", Name: "fn:1", Qualifier: "live"}, perm("x"), "InvalidParameterValueException", "does not match"},
		{"missing function", control.Target{Op: "AddPermission", Name: "nope"}, perm("x"), "ResourceNotFoundException", "function:nope"},
		{"another account", control.Target{Op: "AddPermission", Name: "arn:aws:lambda:us-east-1:210987654321:function:fn"}, perm("x"), "AccessDeniedException", ""},
		{"statement id taken", fn, perm("s3"), "ResourceConflictException", "(s3) provided already exists"},
		{"stale revision", fn, with(perm("x"), func(in *control.PermissionInput) { in.RevisionID = ptr("stale") }), "PreconditionFailedException", "GetPolicy"},
		{"policy over 20 KB", fn, with(perm("x"), func(in *control.PermissionInput) { in.SourceArn = ptr(strings.Repeat("a", 20<<10)) }), "PolicyLengthExceededException", "bigger than the limit (20480)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Add(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	sids := func(t control.Target) []string {
		p, err := svc.Get(ctx, t)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, s := range p.Policy.Statement {
			out = append(out, s.Sid)
		}
		return out
	}
	if got := fmt.Sprint(sids(fn)); got != "[s3]" {
		t.Fatalf("statements after rejections: %s", got)
	}
	_, err = svc.Get(ctx, at("live"))
	wantErr(t, err, "ResourceNotFoundException", "The resource you requested does not exist.")

	// The current revision is accepted; a version and an alias (in the name or the Qualifier)
	// have policies of their own.
	cur, err := svc.Get(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, fn, with(perm("url"), func(in *control.PermissionInput) {
		in.Action, in.Principal, in.FunctionURLAuthType, in.RevisionID = ptr("lambda:InvokeFunctionUrl"), ptr("*"), ptr("NONE"), ptr(cur.RevisionID)
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, at("1"), perm("v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, control.Target{Op: "AddPermission", Name: "fn:live"}, perm("live")); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sids(fn), sids(at("1")), sids(at("live"))); got != "[s3 url] [v1] [live]" {
		t.Fatalf("statements: %s", got)
	}
	if !e.view.PublicURL(ctx, "fn", "") {
		t.Fatal("the public grant is not in force")
	}

	// Concurrent adds all land: a write that lost the race reads again.
	// Five writers: each loses at most four races, within the five attempts.
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := svc.Add(ctx, at("1"), perm(fmt.Sprintf("c%d", i)))
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent add: %v", err)
		}
	}
	if got := len(sids(at("1"))); got != 6 {
		t.Fatalf("version 1 has %d statements, want 6: %v", got, sids(at("1")))
	}

	// Removing: unknown statements, stale revisions and missing policies are refused; the
	// refusal of the public URL is in force when Remove returns (read-your-writes).
	wantErr(t, svc.Remove(ctx, fn, "nope", ""), "ResourceNotFoundException", "Statement nope is not found")
	wantErr(t, svc.Remove(ctx, fn, "url", "stale"), "PreconditionFailedException", "Revision Id")
	wantErr(t, svc.Remove(ctx, control.Target{Op: "RemovePermission", Name: "nope"}, "url", ""), "ResourceNotFoundException", "function:nope")
	if err := svc.Remove(ctx, fn, "url", ""); err != nil {
		t.Fatal(err)
	}
	if e.view.PublicURL(ctx, "fn", "") {
		t.Fatal("the view still lets the public call the URL after its grant was removed")
	}
	if err := svc.Remove(ctx, fn, "s3", ""); err != nil {
		t.Fatal(err)
	}
	// The last statement gone, the policy is gone.
	if _, _, err := e.st.Policies().Get(ctx, "fn", ""); err == nil {
		t.Fatal("an empty policy is still stored")
	}
	wantErr(t, svc.Remove(ctx, fn, "s3", ""), "ResourceNotFoundException", "No policy is associated")
	_, err = svc.Get(ctx, fn)
	wantErr(t, err, "ResourceNotFoundException", "The resource you requested does not exist.")
}
