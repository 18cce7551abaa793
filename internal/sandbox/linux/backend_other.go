//go:build !linux

package linux

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flint-run/flint/internal/sandbox"
)

// Config configures the backend; see backend_linux.go.
type Config struct {
	StateDir     string
	CgroupParent string
	Network      string
	Log          *slog.Logger
}

// Backend is unavailable off Linux.
type Backend struct{}

var (
	_ sandbox.Backend   = (*Backend)(nil)
	_ sandbox.Reclaimer = (*Backend)(nil)
)

var errNotLinux = errors.New("linux sandbox: only available on Linux")

// New fails off Linux.
func New(cfg Config) (*Backend, error) { return nil, errNotLinux }

// Init does nothing off Linux.
func Init() {}

func (b *Backend) Name() string                      { return "linux" }
func (b *Backend) Check(ctx context.Context) error   { return errNotLinux }
func (b *Backend) Reclaim(ctx context.Context) error { return errNotLinux }
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	return nil, errNotLinux
}
