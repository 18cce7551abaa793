package control_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

func TestVersions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Versions
	created, err := e.plane.Functions.Create(ctx, createInput(t, "fn"))
	if err != nil {
		t.Fatal(err)
	}
	fn := control.Target{Op: "PublishVersion", Name: "fn"}

	// Rejections publish nothing.
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.PublishInput
		code, msg string
	}{
		{"stale revision", fn, control.PublishInput{RevisionId: "stale"}, "PreconditionFailedException", "Revision Id"},
		{"other code", fn, control.PublishInput{CodeSha256: "abc"}, "InvalidParameterValueException", "CodeSHA256 (abc) is different from current CodeSHA256 in $LATEST (" + created.CodeSha256 + ")"},
		{"qualified", control.Target{Op: "PublishVersion", Name: "fn:1"}, control.PublishInput{}, "ResourceNotFoundException", "function:fn:1"},
		{"missing function", control.Target{Op: "PublishVersion", Name: "nope"}, control.PublishInput{}, "ResourceNotFoundException", "function:nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Publish(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
			if vs, err := e.st.Versions().List(ctx, "fn"); err != nil || len(vs) != 0 {
				t.Fatalf("versions after the rejection: %d, %v", len(vs), err)
			}
		})
	}

	// A version is served by the view as soon as Publish returns; publishing an unchanged
	// $LATEST answers the newest version again.
	v1, err := svc.Publish(ctx, fn, control.PublishInput{RevisionId: created.RevisionId, CodeSha256: created.CodeSha256})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != "1" || v1.FunctionArn != e.account.FunctionARN("fn", "1") {
		t.Fatalf("version 1: %+v", v1)
	}
	if en, err := e.view.Lookup(ctx, "fn", "1"); err != nil || en.Fn.Config.RevisionId != v1.RevisionId {
		t.Fatalf("view of version 1: %+v, %v", en, err)
	}
	again, err := svc.Publish(ctx, fn, control.PublishInput{})
	if err != nil || again.Version != "1" || again.RevisionId != v1.RevisionId {
		t.Fatalf("unchanged publish: %+v, %v", again, err)
	}
	for _, timeout := range []int{5, 6} {
		if _, err := e.plane.Functions.UpdateConfiguration(ctx, control.Target{Op: "UpdateFunctionConfiguration", Name: "fn"}, control.ConfigUpdate{Timeout: ptr(timeout)}); err != nil {
			t.Fatal(err)
		}
		v, err := svc.Publish(ctx, fn, control.PublishInput{Description: ptr("t")})
		if err != nil || v.Description != "t" || v.Timeout != timeout {
			t.Fatalf("published %+v, %v", v, err)
		}
	}
	// The function's record counts its versions: the next one claims its number there first.
	if f, err := e.st.Functions().Get(ctx, "fn"); err != nil || f.LastVersion != 3 {
		t.Fatalf("function after 3 versions: %+v, %v", f, err)
	}

	list := control.Target{Op: "ListVersionsByFunction", Name: "fn"}
	page := func(p control.Page) func() (control.Page, error) {
		return func() (control.Page, error) { return p, nil }
	}
	for _, tt := range []struct {
		name string
		page control.Page
		want []string
		next string
	}{
		{"all", control.Page{MaxItems: 50}, []string{"$LATEST", "1", "2", "3"}, ""},
		{"first page", control.Page{MaxItems: 2}, []string{"$LATEST", "1"}, "1"},
		{"second page", control.Page{MaxItems: 2, Marker: "1"}, []string{"2", "3"}, ""},
		{"unknown marker", control.Page{MaxItems: 2, Marker: "9"}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := svc.List(ctx, list, page(tt.page))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range out.Versions {
				got = append(got, c.Version)
				if c.FunctionArn != e.account.FunctionARN("fn", c.Version) || c.State != "" {
					t.Errorf("listed %+v", c)
				}
			}
			if !slices.Equal(got, tt.want) || out.NextMarker != tt.next {
				t.Fatalf("got %v next %q, want %v next %q", got, out.NextMarker, tt.want, tt.next)
			}
		})
	}

	// A missing function is reported before the paging parameters are read.
	bad := errors.New("bad paging")
	read := false
	_, err = svc.List(ctx, control.Target{Op: "ListVersionsByFunction", Name: "nope"}, func() (control.Page, error) { read = true; return control.Page{}, bad })
	wantErr(t, err, "ResourceNotFoundException", "function:nope")
	if read {
		t.Fatal("the paging parameters were read for a missing function")
	}
	if _, err := svc.List(ctx, list, func() (control.Page, error) { return control.Page{}, bad }); !errors.Is(err, bad) {
		t.Fatalf("paging error: %v", err)
	}
	_, err = svc.List(ctx, control.Target{Op: "ListVersionsByFunction", Name: "fn", Qualifier: lambda.LatestVersion}, page(control.Page{MaxItems: 1}))
	wantErr(t, err, "", "")
}
