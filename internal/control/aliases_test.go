package control_test

import (
	"context"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

func ptr[T any](v T) *T { return &v }

func TestAliases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.function(t, "fn")
	e.version(t, "fn", 1)
	e.version(t, "fn", 2)
	fn := control.Target{Op: "CreateAlias", Name: "fn"}
	svc := e.plane.Aliases

	// Rejections leave nothing behind: after them, the only alias is the one created first.
	if _, err := svc.Create(ctx, fn, control.AliasInput{Name: "live", FunctionVersion: ptr("1")}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.AliasInput
		code, msg string
	}{
		{"no version", fn, control.AliasInput{Name: "a"}, "ValidationException", "Value null at 'functionVersion'"},
		{"numeric name", fn, control.AliasInput{Name: "12", FunctionVersion: ptr("1")}, "ValidationException", "at 'name'"},
		{"$LATEST as name", fn, control.AliasInput{Name: "$LATEST", FunctionVersion: ptr("1")}, "ValidationException", "at 'name'"},
		{"bad version", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("x")}, "ValidationException", "at 'functionVersion'"},
		{"missing version", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("9")}, "ResourceNotFoundException", "function:fn:9"},
		{"missing function", control.Target{Op: "CreateAlias", Name: "nope"}, control.AliasInput{Name: "a", FunctionVersion: ptr("1")}, "ResourceNotFoundException", "function:nope"},
		{"qualified function", control.Target{Op: "CreateAlias", Name: "fn:1"}, control.AliasInput{Name: "a", FunctionVersion: ptr("1")}, "ResourceNotFoundException", "function:fn:1"},
		{"taken", fn, control.AliasInput{Name: "live", FunctionVersion: ptr("2")}, "ResourceConflictException", "Alias already exists"},
		{"two weights", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("1"), RoutingConfig: &lambda.AliasRoutingConfig{
			AdditionalVersionWeights: map[string]float64{"2": 0.1, "3": 0.1}}}, "InvalidParameterValueException", "cannot be greater than 1"},
		{"weight on $LATEST", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("$LATEST"), RoutingConfig: &lambda.AliasRoutingConfig{
			AdditionalVersionWeights: map[string]float64{"2": 0.1}}}, "InvalidParameterValueException", "$LATEST is not supported"},
		{"weight above 1", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("1"), RoutingConfig: &lambda.AliasRoutingConfig{
			AdditionalVersionWeights: map[string]float64{"2": 1.5}}}, "ValidationException", "additionalVersionWeights"},
		{"weight on the primary", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("1"), RoutingConfig: &lambda.AliasRoutingConfig{
			AdditionalVersionWeights: map[string]float64{"1": 0.5}}}, "InvalidParameterValueException", "already included"},
		{"long description", fn, control.AliasInput{Name: "a", FunctionVersion: ptr("1"), Description: ptr(string(make([]byte, 257)))}, "ValidationException", "description"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	list, err := svc.List(ctx, fn, "", control.Page{MaxItems: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Aliases) != 1 || list.Aliases[0].Name != "live" || list.Aliases[0].FunctionVersion != "1" {
		t.Fatalf("aliases after rejections: %+v", list.Aliases)
	}

	// An update with a stale RevisionId is refused; with the current one it applies, and the
	// invocation view routes by it as soon as Update returns (read-your-writes).
	cur, err := svc.Get(ctx, fn, "live")
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Update(ctx, fn, "live", control.AliasInput{FunctionVersion: ptr("2"), RevisionId: "stale"})
	wantErr(t, err, "PreconditionFailedException", "Revision Id")
	next, err := svc.Update(ctx, fn, "live", control.AliasInput{FunctionVersion: ptr("2"), RevisionId: cur.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if next.FunctionVersion != "2" || next.RevisionId == cur.RevisionId {
		t.Fatalf("updated alias %+v", next)
	}
	if en, err := e.view.Lookup(ctx, "fn", "live"); err != nil || en.Fn.Config.Version != "2" {
		t.Fatalf("view after update: %+v, %v", en, err)
	}
	_, err = svc.Update(ctx, fn, "gone", control.AliasInput{FunctionVersion: ptr("2")})
	wantErr(t, err, "ResourceNotFoundException", "Alias not found")
	_, err = svc.Get(ctx, fn, "gone")
	wantErr(t, err, "ResourceNotFoundException", "Cannot find alias arn")

	// Paging and the FunctionVersion filter.
	for _, n := range []string{"b", "c", "d"} {
		if _, err := svc.Create(ctx, fn, control.AliasInput{Name: n, FunctionVersion: ptr("1")}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := svc.List(ctx, fn, "1", control.Page{MaxItems: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Aliases) != 2 || page.Aliases[0].Name != "b" || page.NextMarker != "c" {
		t.Fatalf("first page %+v", page)
	}
	page, err = svc.List(ctx, fn, "1", control.Page{MaxItems: 2, Marker: page.NextMarker})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Aliases) != 1 || page.Aliases[0].Name != "d" || page.NextMarker != "" {
		t.Fatalf("second page %+v", page)
	}

	// Delete is idempotent, and the view forgets the alias at once.
	for range 2 {
		if err := svc.Delete(ctx, fn, "live"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.view.Lookup(ctx, "fn", "live"); err == nil {
		t.Fatal("the view still resolves a deleted alias")
	}
}
