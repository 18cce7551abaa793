package control_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/flint-run/flint/internal/control"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.function(t, "fn")
	svc := e.plane.Tags
	arn := e.account.FunctionARN("fn", "")
	fn := control.Target{Op: "TagResource", Name: arn}
	if err := svc.Tag(ctx, fn, control.TagsInput{Tags: map[string]string{"team": "core"}}); err != nil {
		t.Fatal(err)
	}
	tooMany := map[string]string{}
	for i := range 50 {
		tooMany[fmt.Sprintf("k%02d", i)] = "v"
	}

	// Rejections leave the tags as they were.
	for _, tt := range []struct {
		name      string
		target    control.Target
		tags      map[string]string
		code, msg string
	}{
		{"null tags", fn, nil, "ValidationException", "Value null at 'tags'"},
		{"long key", fn, map[string]string{strings.Repeat("k", 129): "v"}, "InvalidParameterValueException", "Tag keys must be 1 to 128"},
		{"empty key", fn, map[string]string{"": "v"}, "InvalidParameterValueException", "Tag keys must be 1 to 128"},
		{"long value", fn, map[string]string{"k": strings.Repeat("v", 257)}, "InvalidParameterValueException", "values at most 256"},
		{"reserved key", fn, map[string]string{"Aws:x": "1"}, "InvalidParameterValueException", "reserved: Aws:x"},
		{"too many with the one stored", fn, tooMany, "InvalidParameterValueException", "Number of tags exceeds resource tag limit."},
		{"qualified ARN", control.Target{Op: "TagResource", Name: arn + ":1"}, map[string]string{"a": "1"}, "InvalidParameterValueException", "Tags on function aliases and versions are not supported. Please specify a function ARN."},
		{"a name, not an ARN", control.Target{Op: "TagResource", Name: "fn"}, map[string]string{"a": "1"}, "ValidationException", "at 'resource'"},
		{"missing function", control.Target{Op: "TagResource", Name: e.account.FunctionARN("nope", "")}, map[string]string{"a": "1"}, "ResourceNotFoundException", "function:nope"},
		{"another region", control.Target{Op: "TagResource", Name: "arn:aws:lambda:eu-west-1:123456789012:function:fn"}, map[string]string{"a": "1"}, "ResourceNotFoundException", "not reachable in this region"},
		{"another account", control.Target{Op: "TagResource", Name: "arn:aws:lambda:us-east-1:210987654321:function:fn"}, map[string]string{"a": "1"}, "AccessDeniedException", "lambda:TagResource"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, svc.Tag(ctx, tt.target, control.TagsInput{Tags: tt.tags}), tt.code, tt.msg)
		})
	}
	wantTags := func(want map[string]string) {
		t.Helper()
		// Read-your-writes: the invocation view holds the function's new record as soon as
		// the write returns (looked at first, before anything else gives the watch time).
		en, err := e.view.Lookup(ctx, "fn", "")
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(en.Fn.Tags, want) {
			t.Fatalf("the view's tags %v, want %v", en.Fn.Tags, want)
		}
		got, err := svc.List(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got.Tags, want) {
			t.Fatalf("tags %v, want %v", got.Tags, want)
		}
	}
	wantTags(map[string]string{"team": "core"})

	// Tagging merges; a new value replaces the old one.
	if err := svc.Tag(ctx, fn, control.TagsInput{Tags: map[string]string{"team": "edge", "env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	wantTags(map[string]string{"team": "edge", "env": "prod"})

	// Concurrent taggers all land: a write that lost the race to another reads again.
	// Five writers: each loses at most four races, within the five attempts.
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- svc.Tag(ctx, fn, control.TagsInput{Tags: map[string]string{fmt.Sprintf("c%d", i): "1"}})
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent tag: %v", err)
		}
	}
	wantTags(map[string]string{"team": "edge", "env": "prod", "c0": "1", "c1": "1", "c2": "1", "c3": "1", "c4": "1"})

	// Untagging needs keys; keys the function lacks are ignored; with none left the record has none.
	wantErr(t, svc.Untag(ctx, fn, nil), "ValidationException", "Value null at 'tagKeys'")
	if err := svc.Untag(ctx, fn, []string{"c0", "c1", "c2", "c3", "c4", "nope"}); err != nil {
		t.Fatal(err)
	}
	wantTags(map[string]string{"team": "edge", "env": "prod"})
	wantErr(t, svc.Untag(ctx, control.Target{Op: "UntagResource", Name: e.account.FunctionARN("nope", "")}, []string{"a"}), "ResourceNotFoundException", "function:nope")
	if err := svc.Untag(ctx, fn, []string{"team", "env"}); err != nil {
		t.Fatal(err)
	}
	wantTags(map[string]string{})
	if f, err := e.st.Functions().Get(ctx, "fn"); err != nil || f.Tags != nil {
		t.Fatalf("stored tags %v, %v; want none", f.Tags, err)
	}
}
