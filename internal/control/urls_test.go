package control_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
)

func TestURLs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.function(t, "fn")
	e.version(t, "fn", 1)
	e.alias(t, "fn", "live", "1")
	svc := e.plane.URLs
	fn := control.Target{Op: "CreateFunctionUrlConfig", Name: "fn"}
	at := func(q string) control.Target {
		return control.Target{Op: "CreateFunctionUrlConfig", Name: "fn", Qualifier: q}
	}
	none := control.URLInput{AuthType: ptr("NONE")}

	// Rejections store nothing.
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.URLInput
		code, msg string
	}{
		{"no auth type", fn, control.URLInput{}, "ValidationException", "Value null at 'authType'"},
		{"bad auth type", fn, control.URLInput{AuthType: ptr("OPEN")}, "ValidationException", "at 'authType'"},
		{"bad invoke mode", fn, control.URLInput{AuthType: ptr("NONE"), InvokeMode: ptr("STREAM")}, "ValidationException", "at 'invokeMode'"},
		{"max age", fn, control.URLInput{AuthType: ptr("NONE"), Cors: &lambda.Cors{MaxAge: ptr(86401)}}, "ValidationException", "'cors.maxAge'"},
		{"seven methods", fn, control.URLInput{AuthType: ptr("NONE"), Cors: &lambda.Cors{AllowMethods: make([]string, 7)}}, "ValidationException", "cors lists"},
		{"missing function", control.Target{Op: "CreateFunctionUrlConfig", Name: "nope"}, none, "ResourceNotFoundException", "Function does not exist"},
		// AWS accepts fn:alias; a qualifier that disagrees with the Qualifier parameter is refused.
		{"qualifier mismatch", control.Target{Op: "CreateFunctionUrlConfig", Name: "fn:live", Qualifier: "other"}, none, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."},
		{"other account", control.Target{Op: "CreateFunctionUrlConfig", Name: "arn:aws:lambda:us-east-1:999999999999:function:fn"}, none, "AccessDeniedException", ""},
		{"version", at("1"), none, "ValidationException", "Value '1' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"},
		{"$LATEST", at("$LATEST"), none, "ValidationException", "Value '$LATEST' at 'qualifier'"},
		{"missing alias", at("gone"), none, "ResourceNotFoundException", "Function does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if all, err := svc.List(ctx, fn); err != nil || len(all) != 0 {
		t.Fatalf("URLs after rejections: %v, %v", all, err)
	}

	// Create: the data plane serves the URL as soon as Create returns (read-your-writes); one
	// URL per qualifier, $LATEST being the unqualified one.
	u, err := svc.Create(ctx, fn, control.URLInput{AuthType: ptr("NONE"), Cors: &lambda.Cors{AllowOrigins: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{32}$`).MatchString(u.ID) || u.Function != "fn" || u.Qualifier != "" || u.Config.InvokeMode != "BUFFERED" ||
		u.Config.FunctionArn != e.account.FunctionARN("fn", "") || u.Config.CreationTime == "" || u.Config.LastModifiedTime != u.Config.CreationTime {
		t.Fatalf("created %+v", u)
	}
	if got, err := e.view.LookupURL(ctx, u.ID); err != nil || got.Config.AuthType != "NONE" {
		t.Fatalf("view after create: %+v, %v", got, err)
	}
	_, err = svc.Create(ctx, at(""), control.URLInput{AuthType: ptr("AWS_IAM")})
	wantErr(t, err, "ResourceConflictException", "FunctionUrlConfig exists")
	live, err := svc.Create(ctx, at("live"), control.URLInput{AuthType: ptr("AWS_IAM"), InvokeMode: ptr("RESPONSE_STREAM")})
	if err != nil {
		t.Fatal(err)
	}
	if live.ID == u.ID || live.Qualifier != "live" || live.Config.FunctionArn != e.account.FunctionARN("fn", "live") || live.Config.InvokeMode != "RESPONSE_STREAM" {
		t.Fatalf("alias URL %+v", live)
	}
	if got, err := svc.Get(ctx, at("")); err != nil || got.ID != u.ID {
		t.Fatalf("get unqualified: %+v, %v", got, err)
	}
	if got, err := svc.Get(ctx, control.Target{Op: "GetFunctionUrlConfig", Name: "fn:live"}); err != nil || got.ID != live.ID {
		t.Fatalf("get fn:live: %+v, %v", got, err)
	}
	if got, err := svc.Get(ctx, at("live")); err != nil || got.ID != live.ID {
		t.Fatalf("get live: %+v, %v", got, err)
	}
	if all, err := svc.List(ctx, at("live")); err != nil || len(all) != 2 {
		t.Fatalf("list (the Qualifier is not a filter): %v, %v", all, err)
	}

	// Update changes what is given, and the view has it at once; a rejected one changes nothing.
	_, err = svc.Update(ctx, fn, control.URLInput{AuthType: ptr("OPEN")})
	wantErr(t, err, "ValidationException", "at 'authType'")
	_, err = svc.Update(ctx, at("1"), none)
	wantErr(t, err, "ValidationException", "Value '1' at 'qualifier'")
	if got, _ := svc.Get(ctx, fn); got.Config.AuthType != "NONE" || got.Config.LastModifiedTime != u.Config.LastModifiedTime {
		t.Fatalf("after rejected updates %+v", got.Config)
	}
	up, err := svc.Update(ctx, fn, control.URLInput{AuthType: ptr("AWS_IAM")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Config.AuthType != "AWS_IAM" || up.Config.Cors == nil || up.Config.InvokeMode != "BUFFERED" || up.Config.CreationTime != u.Config.CreationTime {
		t.Fatalf("updated %+v", up.Config)
	}
	if got, err := e.view.LookupURL(ctx, u.ID); err != nil || got.Config.AuthType != "AWS_IAM" {
		t.Fatalf("view after update: %+v, %v", got, err)
	}

	// The same, many times over: the watch is quick enough that a write that does not wait for
	// it is seen stale only now and then. (A new URL's first lookup reads the store on a miss.)
	if _, err := e.plane.Aliases.Create(ctx, control.Target{Op: "CreateAlias", Name: "fn"}, control.AliasInput{Name: "beta", FunctionVersion: ptr("1")}); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		auth := []string{"NONE", "AWS_IAM"}[i%2]
		if _, err := svc.Update(ctx, at("live"), control.URLInput{AuthType: &auth}); err != nil {
			t.Fatal(err)
		}
		if got, err := e.view.LookupURL(ctx, live.ID); err != nil || got.Config.AuthType != auth {
			t.Fatalf("view after update %d: %+v, %v", i, got, err)
		}
		tmp, err := svc.Create(ctx, at("beta"), none)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.view.LookupURL(ctx, tmp.ID); err != nil {
			t.Fatalf("view after create %d: %v", i, err)
		}
		if err := svc.Delete(ctx, at("beta")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.view.LookupURL(ctx, tmp.ID); !errors.Is(err, invoke.ErrNotFound) {
			t.Fatalf("view after delete %d: %v", i, err)
		}
	}

	// Delete: the data plane stops serving the URL at once; there is nothing to delete twice.
	if err := svc.Delete(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if _, err := e.view.LookupURL(ctx, u.ID); !errors.Is(err, invoke.ErrNotFound) {
		t.Fatalf("view after delete: %v", err)
	}
	wantErr(t, svc.Delete(ctx, fn), "ResourceNotFoundException", "The resource you requested does not exist.")
	_, err = svc.Get(ctx, fn)
	wantErr(t, err, "ResourceNotFoundException", "The resource you requested does not exist.")
	if all, err := svc.List(ctx, fn); err != nil || len(all) != 1 || all[0].ID != live.ID {
		t.Fatalf("list after delete: %v, %v", all, err)
	}
	_, err = svc.List(ctx, control.Target{Op: "ListFunctionUrlConfigs", Name: "fn:live"})
	wantErr(t, err, "InvalidParameterValueException", "must not carry a qualifier")
}
