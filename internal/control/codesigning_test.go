package control_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

// TestCodeSigningDeleteRacesBind: a configuration deleted while functions are being bound to it
// never leaves a function bound to a configuration that is gone: either the delete sees the
// binding (and is refused) or the bind sees the delete (and is undone).
func TestCodeSigningDeleteRacesBind(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.CodeSigning
	const fns = 6
	for i := range fns {
		e.function(t, fmt.Sprintf("fn%d", i))
	}
	pubs := &lambda.AllowedPublishers{SigningProfileVersionArns: []string{"arn:aws:signer:us-east-1:123456789012:/signing-profiles/p"}}
	for round := range 60 {
		c, err := svc.Create(ctx, control.CodeSigningInput{AllowedPublishers: pubs})
		if err != nil {
			t.Fatal(err)
		}
		arn := c.CodeSigningConfig.CodeSigningConfigArn
		var wg sync.WaitGroup
		for i := range fns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = svc.Bind(ctx, control.Target{Op: "PutFunctionCodeSigningConfig", Name: fmt.Sprintf("fn%d", i)}, &arn)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = svc.Delete(ctx, arn)
		}()
		wg.Wait()
		_, gone := svc.Get(ctx, arn)
		for i := range fns {
			b, err := svc.Binding(ctx, control.Target{Op: "GetFunctionCodeSigningConfig", Name: fmt.Sprintf("fn%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			if gone != nil && b.CodeSigningConfigArn == arn {
				t.Fatalf("round %d: fn%d is bound to %s, which is deleted", round, i, arn)
			}
			if err := svc.Unbind(ctx, control.Target{Op: "DeleteFunctionCodeSigningConfig", Name: fmt.Sprintf("fn%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
