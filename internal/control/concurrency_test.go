package control_test

import (
	"context"
	"testing"

	"github.com/flint-run/flint/internal/control"
)

func TestConcurrency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Concurrency
	for _, n := range []string{"fn", "other"} {
		if _, err := e.plane.Functions.Create(ctx, createInput(t, n)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.view.Lookup(ctx, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	fn := control.Target{Op: "PutFunctionConcurrency", Name: "fn"}
	reserved := func(name string) *int {
		t.Helper()
		f, err := e.st.Functions().Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return f.ReservedConcurrency
	}

	// The account limit is 1000 and at least 100 must stay unreserved.
	for _, tt := range []struct {
		name      string
		target    control.Target
		n         *int
		code, msg string
	}{
		{"null", fn, nil, "ValidationException", "Value null at 'reservedConcurrentExecutions'"},
		{"negative", fn, ptr(-1), "ValidationException", "Value '-1' at 'reservedConcurrentExecutions'"},
		{"too many", fn, ptr(901), "InvalidParameterValueException", "below its minimum value of [100]"},
		{"qualified", control.Target{Op: "PutFunctionConcurrency", Name: "fn:1"}, ptr(1), "InvalidParameterValueException", "This operation is permitted on Lambda functions only."},
		{"missing function", control.Target{Op: "PutFunctionConcurrency", Name: "nope"}, ptr(1), "ResourceNotFoundException", "function:nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Put(ctx, tt.target, control.FunctionConcurrency{ReservedConcurrentExecutions: tt.n})
			wantErr(t, err, tt.code, tt.msg)
			if r := reserved("fn"); r != nil {
				t.Fatalf("reserved %d after the rejection", *r)
			}
		})
	}

	// A reservation is in the view when Put returns, and counts against the other functions.
	out, err := svc.Put(ctx, fn, control.FunctionConcurrency{ReservedConcurrentExecutions: ptr(900)})
	if err != nil || *out.ReservedConcurrentExecutions != 900 {
		t.Fatalf("put: %+v, %v", out, err)
	}
	if en, err := e.view.Lookup(ctx, "fn", ""); err != nil || en.Fn.ReservedConcurrency == nil || *en.Fn.ReservedConcurrency != 900 {
		t.Fatalf("view after put: %+v, %v", en, err)
	}
	_, err = svc.Put(ctx, control.Target{Op: "PutFunctionConcurrency", Name: "other"}, control.FunctionConcurrency{ReservedConcurrentExecutions: ptr(1)})
	wantErr(t, err, "InvalidParameterValueException", "[100]")
	settings, err := e.plane.Functions.AccountSettings(ctx)
	if err != nil || settings.AccountLimit.ConcurrentExecutions != 1000 || settings.AccountLimit.UnreservedConcurrentExecutions != 100 ||
		settings.AccountUsage.FunctionCount != 2 || settings.AccountUsage.TotalCodeSize == 0 {
		t.Fatalf("account settings: %+v, %v", settings, err)
	}
	got, err := svc.Get(ctx, control.Target{Op: "GetFunctionConcurrency", Name: "fn"})
	if err != nil || *got.ReservedConcurrentExecutions != 900 {
		t.Fatalf("get: %+v, %v", got, err)
	}

	// Delete removes it, at once for the view too; deleting none succeeds.
	for range 2 {
		if err := svc.Delete(ctx, control.Target{Op: "DeleteFunctionConcurrency", Name: "fn"}); err != nil {
			t.Fatal(err)
		}
	}
	if en, err := e.view.Lookup(ctx, "fn", ""); err != nil || en.Fn.ReservedConcurrency != nil {
		t.Fatalf("view after delete: %+v, %v", en, err)
	}
	if got, err := svc.Get(ctx, control.Target{Op: "GetFunctionConcurrency", Name: "fn"}); err != nil || got.ReservedConcurrentExecutions != nil {
		t.Fatalf("get after delete: %+v, %v", got, err)
	}
	wantErr(t, svc.Delete(ctx, control.Target{Op: "DeleteFunctionConcurrency", Name: "nope"}), "ResourceNotFoundException", "function:nope")
}
