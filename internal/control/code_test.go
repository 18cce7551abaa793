package control_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/control"
)

func TestCodeValidate(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name      string
		in        control.CodeInput
		code, msg string
	}{
		{"zip", control.CodeInput{ZipFile: pkg(t, "x = 1\n")}, "", ""},
		{"image", control.CodeInput{ImageUri: "img", ZipFile: pkg(t, "x = 1\n")}, "InvalidParameterValueException", "ImageUri is not supported"},
		{"S3", control.CodeInput{S3Bucket: "b"}, "InvalidParameterValueException", "S3Bucket/S3Key are not supported"},
		{"nothing", control.CodeInput{}, "InvalidParameterValueException", "Please provide a source for function code."},
		{"not a zip", control.CodeInput{ZipFile: []byte("hello")}, "InvalidParameterValueException", "Could not unzip uploaded file. Please check your file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.plane.Code.Validate(&tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if keys := e.codeKeys(t); len(keys) != 0 {
		t.Fatalf("validation stored %v", keys)
	}
}

// TestCodeLifetime: code is kept while a record references it or a request holds it, and no
// longer.
func TestCodeLifetime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code := e.plane.Code
	stage := func(src string) *control.StagedCode {
		t.Helper()
		in := &control.CodeInput{ZipFile: pkg(t, src)}
		info, err := code.Validate(in)
		if err != nil {
			t.Fatal(err)
		}
		s, err := code.Stage(ctx, in.ZipFile, info)
		if err != nil {
			t.Fatal(err)
		}
		if s.Key() != hex.EncodeToString(info.Sha256[:]) {
			t.Fatalf("key %s for sha256 %x", s.Key(), info.Sha256)
		}
		return s
	}
	stored := func(key string) bool {
		return slices.Contains(e.codeKeys(t), key) && slices.Contains(e.cached(t), key)
	}
	gone := func(key string) bool {
		return !slices.Contains(e.codeKeys(t), key) && !slices.Contains(e.cached(t), key)
	}

	// A refused request's code goes at once: from the object store and the unpack cache.
	s := stage("a = 1\n")
	if !stored(s.Key()) {
		t.Fatal("staged code is not stored and unpacked")
	}
	s.Drop(ctx)
	if !gone(s.Key()) {
		t.Fatal("dropped code is still there")
	}

	// Two requests with the same package: one refused leaves the other's code alone, and a
	// collection does not take code a request holds.
	s1, s2 := stage("b = 1\n"), stage("b = 1\n")
	s1.Drop(ctx)
	if n, err := code.Collect(ctx); err != nil || n != 0 || !stored(s2.Key()) {
		t.Fatalf("collection took held code: removed %d, %v", n, err)
	}
	// Kept but referenced by nothing: the next collection (grace 0 here) removes it.
	s2.Keep()
	if n, err := code.Collect(ctx); err != nil || n != 1 || !gone(s2.Key()) {
		t.Fatalf("collection of unreferenced code: removed %d, %v", n, err)
	}

	// A function's code stays until the function is deleted; then Run collects it.
	if _, err := e.plane.Functions.Create(ctx, createInput(t, "fn")); err != nil {
		t.Fatal(err)
	}
	keys := e.codeKeys(t)
	if len(keys) != 1 {
		t.Fatalf("code of fn: %v", keys)
	}
	if n, err := code.Collect(ctx); err != nil || n != 0 || !stored(keys[0]) {
		t.Fatalf("collection took referenced code: removed %d, %v", n, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- code.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := e.plane.Functions.Delete(ctx, control.Target{Op: "DeleteFunction", Name: "fn"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !gone(keys[0]) {
		if time.Now().After(deadline) {
			t.Fatal("a deleted function's code was not collected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCodeCollectionListsOnce: a collection reads the references of every function and version
// with a fixed number of listings, not one a function (a JetStream consumer each, which was most
// of the CPU of a server's start with 1,000 functions); the requests it sends grow by about one
// read per function. Code only a published version references stays.
func TestCodeCollectionListsOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nc := e.st.JetStream().Conn()
	sent := func() uint64 {
		t.Helper()
		before := nc.Stats().OutMsgs
		if _, err := e.plane.Code.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		return nc.Stats().OutMsgs - before
	}
	create := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			in := createInput(t, fmt.Sprintf("fn-%02d", i))
			in.Code = &control.CodeInput{ZipFile: pkg(t, fmt.Sprintf("def handler(e, c):\n    return %d\n", i))}
			in.Publish = i == 0
			if _, err := e.plane.Functions.Create(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(0, 10)
	// fn-00's version 1 keeps its first code; $LATEST moves on.
	if _, err := e.plane.Functions.UpdateCode(ctx, control.Target{Name: "fn-00"},
		control.CodeUpdate{ZipFile: pkg(t, "def handler(e, c):\n    return 'new'\n")}); err != nil {
		t.Fatal(err)
	}
	few := sent()
	create(10, 40)
	many := sent()
	// 30 more functions: 30 more reads, and a few requests of slack; a listing per function
	// would add at least 60 (a consumer's creation and deletion each).
	if many-few > 40 {
		t.Errorf("a collection sent %d requests with 10 functions and %d with 40: %d more, want at most 40", few, many, many-few)
	}
	// 40 functions' code and the code only version 1 of fn-00 references (grace 0 here).
	if keys := e.codeKeys(t); len(keys) != 41 {
		t.Errorf("%d packages kept after collections, want the 41 referenced", len(keys))
	}
}
