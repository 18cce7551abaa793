//go:build !linux

package linux

import (
	"context"
	"errors"

	"github.com/flint-run/flint/internal/sandbox"
)

// Backend is unavailable off Linux.
type Backend struct{}

var (
	_ sandbox.Backend   = (*Backend)(nil)
	_ sandbox.Reclaimer = (*Backend)(nil)
	_ sandbox.Closer    = (*Backend)(nil)
)

var errNotLinux = errors.New("linux sandbox: only available on Linux")

// New fails off Linux.
func New(cfg Config) (*Backend, error) { return nil, errNotLinux }

// Init does nothing off Linux.
func Init() {}

func (b *Backend) Name() string                      { return "linux" }
func (b *Backend) Check(ctx context.Context) error   { return errNotLinux }
func (b *Backend) Reclaim(ctx context.Context) error { return errNotLinux }
func (b *Backend) Close() error                      { return nil }
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	return nil, errNotLinux
}
