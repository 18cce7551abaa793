// Package invoke resolves what an invocation runs: function name and qualifier to a function
// configuration and the worker pool that serves it. It keeps configuration in memory, fed by the
// store's KV watch, so the warm path touches neither disk nor JetStream. It knows nothing of HTTP.
package invoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/worker"
)

// ErrNotFound means no such function (or qualifier).
var ErrNotFound = errors.New("invoke: function not found")

// Service is the in-memory view of every function and its pool.
type Service struct {
	store   *store.Store
	workers *worker.Manager
	code    *artifact.Cache
	limits  artifact.Limits
	log     *slog.Logger

	mu      sync.RWMutex
	entries map[string]*Entry
	ready   chan struct{}
}

// Entry is one function's current configuration and its pool (nil fn = deleted).
type Entry struct {
	rev  uint64
	Fn   *lambda.Function
	Pool *worker.Pool
}

// New returns a Service; Run keeps it in sync with the store.
func New(st *store.Store, workers *worker.Manager, code *artifact.Cache, limits artifact.Limits, log *slog.Logger) *Service {
	return &Service{store: st, workers: workers, code: code, limits: limits, log: log,
		entries: make(map[string]*Entry), ready: make(chan struct{})}
}

// Run applies every change in the store to the cache until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var once sync.Once
	return s.store.WatchFunctions(ctx, func() { once.Do(func() { close(s.ready) }) },
		func(name string, rev uint64, f *lambda.Function) { s.Apply(name, rev, f) })
}

// Ready is closed once the cache holds everything stored at start.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Apply installs revision rev of a function (f nil: deleted) unless a newer one is known. The API
// calls it right after its own writes so that an invoke that follows sees them at once; the watch
// brings the same revision (ignored) and other nodes' changes.
func (s *Service) Apply(name string, rev uint64, f *lambda.Function) {
	s.mu.Lock()
	old := s.entries[name]
	if old != nil && rev <= old.rev {
		s.mu.Unlock()
		return
	}
	e := &Entry{rev: rev, Fn: f}
	if f != nil {
		e.Pool = s.workers.Pool(s.workerFunction(f))
	}
	s.entries[name] = e
	s.mu.Unlock()
	if old != nil && old.Pool != nil {
		old.Pool.Retire()
	}
}

// Lookup returns the function named name at qualifier ("" or $LATEST). On a cache miss it asks
// the store once (a function created on another node a moment ago).
func (s *Service) Lookup(ctx context.Context, name, qualifier string) (*Entry, error) {
	if qualifier != "" && qualifier != lambda.LatestVersion {
		return nil, ErrNotFound // versions and aliases arrive with their issue
	}
	s.mu.RLock()
	e := s.entries[name]
	s.mu.RUnlock()
	if e == nil {
		f, err := s.store.GetFunction(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		s.Apply(name, f.Revision, f.Function)
		s.mu.RLock()
		e = s.entries[name]
		s.mu.RUnlock()
	}
	if e == nil || e.Fn == nil {
		return nil, ErrNotFound
	}
	return e, nil
}

func (s *Service) workerFunction(f *lambda.Function) worker.Function {
	rt, _ := runtimes.Lookup(f.Config.Runtime)
	key := f.CodeKey
	return worker.Function{
		Name:        f.Config.FunctionName,
		Version:     f.Config.Version,
		ARN:         f.Config.FunctionArn,
		Runtime:     rt,
		Handler:     f.Config.Handler,
		MemoryMB:    f.Config.MemorySize,
		Timeout:     time.Duration(f.Config.Timeout) * time.Second,
		EphemeralMB: f.EphemeralMB(),
		Env:         f.Env(),
		Code: func(ctx context.Context) (string, error) {
			return s.code.Ensure(ctx, key, s.limits, func(ctx context.Context) ([]byte, error) {
				b, err := s.store.GetCode(ctx, key)
				if err != nil {
					return nil, fmt.Errorf("fetch code: %w", err)
				}
				return b, nil
			})
		},
	}
}
