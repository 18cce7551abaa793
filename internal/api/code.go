package api

import (
	"context"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
)

// The code store (validation, staging, collection) is control.Code. What is below lets
// layers.go (PublishLayerVersion, DeleteLayerVersion) call it as before, until layers move to
// control; it holds no logic of its own.

// functionCode is a package as a request gives it.
type functionCode = control.CodeInput

func (a *API) validateCode(code *functionCode) (artifact.Info, error) {
	return a.ctl.Code.Validate(code)
}

// stagedCode is a stored package whose record is not written yet: exactly one of keep or drop.
type stagedCode struct {
	s   *control.StagedCode
	key string
}

func (a *API) storeCode(ctx context.Context, zip []byte, info artifact.Info) (*stagedCode, error) {
	s, err := a.ctl.Code.Stage(ctx, zip, info)
	if err != nil {
		return nil, err
	}
	return &stagedCode{s: s, key: s.Key()}, nil
}

func (s *stagedCode) keep()                    { s.s.Keep() }
func (s *stagedCode) drop(ctx context.Context) { s.s.Drop(ctx) }

// codeWaker wakes the code collector (a.gc.wake()).
type codeWaker struct{ c *control.Code }

func (w codeWaker) wake() { w.c.Wake() }

// RunCodeGC collects unreferenced code until ctx ends (control.Code.Run); server runs it.
func (a *API) RunCodeGC(ctx context.Context) error { return a.ctl.Code.Run(ctx) }
