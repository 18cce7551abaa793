package control

import (
	"context"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Recursion serves PutFunctionRecursionConfig and GetFunctionRecursionConfig. Flint has no
// recursive-loop detection (AWS stops a loop through SQS, SNS or S3 after 16 calls unless the
// function says Allow): the setting is stored and answered, and decides nothing yet.
type Recursion struct {
	resolver
	awaiter
	functions functionRecords // the setting lives on $LATEST's record
}

// RecursionConfig is both operations' request body and answer.
type RecursionConfig struct {
	RecursiveLoop *string `json:"RecursiveLoop"`
}

// Get returns the function's setting: Terminate unless Allow was put.
func (s *Recursion) Get(ctx context.Context, t Target) (*RecursionConfig, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	loop := f.RecursiveLoop
	if loop == "" {
		loop = "Terminate"
	}
	return &RecursionConfig{RecursiveLoop: &loop}, nil
}

// Put sets the function's setting. Its RevisionId and environments stay.
func (s *Recursion) Put(ctx context.Context, t Target, in RecursionConfig) (*RecursionConfig, error) {
	switch {
	case in.RecursiveLoop == nil:
		return nil, apierr.Validation("1 validation error detected: Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null")
	case *in.RecursiveLoop != "Allow" && *in.RecursiveLoop != "Terminate":
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: [Terminate, Allow]", *in.RecursiveLoop)
	}
	_, err := s.rewriteFunction(ctx, s.functions, func() (store.Function, error) { return s.latest(ctx, t) },
		func(next *lambda.Function) (bool, error) {
			write := next.RecursiveLoop != *in.RecursiveLoop
			next.RecursiveLoop = *in.RecursiveLoop
			return write, nil
		})
	if err != nil {
		return nil, err
	}
	return &in, nil
}
