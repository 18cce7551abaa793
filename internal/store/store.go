// Package store is Flint's registry: function records in a JetStream KV bucket and code packages
// in a JetStream object store, on an embedded NATS server (or, later, an external one). It owns the
// NATS connection; it knows nothing of HTTP, sandboxes or invocations.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/lambda"
)

// Sentinels callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrConflict = errors.New("store: revision conflict")
)

const (
	functionsBucket = "flint_functions"
	codeBucket      = "flint_code"
)

// Options configure Open.
type Options struct {
	Dir    string // JetStream's store directory
	Listen string // host:port to open the embedded server to clients; "" keeps it in-process only
	Log    *slog.Logger
}

// Store is the registry on JetStream.
type Store struct {
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	fns  jetstream.KeyValue
	code jetstream.ObjectStore
	log  *slog.Logger
}

// Open starts the embedded NATS server with JetStream in opts.Dir and opens the buckets.
func Open(ctx context.Context, opts Options) (*Store, error) {
	sopts := &server.Options{
		ServerName: "flint",
		JetStream:  true,
		StoreDir:   filepath.Join(opts.Dir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: opts.Listen == "",
		// The registry and async queue live here; keep JetStream within sane bounds of one machine.
		JetStreamMaxMemory: 256 << 20,
	}
	if opts.Listen != "" {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		sopts.Host, sopts.Port = host, p
		if p == 0 {
			sopts.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	go ns.Start() // the server owns this goroutine; Shutdown stops it
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start embedded nats: not ready within 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("flint"), nats.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	s := &Store{ns: ns, nc: nc, log: opts.Log}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	if s.fns, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: functionsBucket, Description: "Flint functions ($LATEST configuration)", History: 1,
		Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("open functions bucket: %w", err)
	}
	if s.code, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: codeBucket, Description: "Flint code packages by SHA-256", Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("open code bucket: %w", err)
	}
	return nil
}

// JetStream is the shared JetStream context for other parts (logs, async queue).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// ClientURL is where outside NATS clients connect ("" when not listening).
func (s *Store) ClientURL() string {
	if addr := s.ns.Addr(); addr != nil {
		return s.ns.ClientURL()
	}
	return ""
}

// Close drains the connection and shuts the embedded server down.
func (s *Store) Close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// Function is a stored function with the KV revision that guards updates.
type Function struct {
	*lambda.Function
	Revision uint64
}

// GetFunction returns the function named name.
func (s *Store) GetFunction(ctx context.Context, name string) (Function, error) {
	e, err := s.fns.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Function{}, fmt.Errorf("function %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Function{}, fmt.Errorf("get function %s: %w", name, err)
	}
	f, err := decode(e.Value())
	if err != nil {
		return Function{}, fmt.Errorf("decode function %s: %w", name, err)
	}
	return Function{Function: f, Revision: e.Revision()}, nil
}

// CreateFunction stores a new function; ErrExists if the name is taken.
func (s *Store) CreateFunction(ctx context.Context, f *lambda.Function) (uint64, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("encode function: %w", err)
	}
	rev, err := s.fns.Create(ctx, f.Config.FunctionName, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("function %s: %w", f.Config.FunctionName, ErrExists)
	}
	if err != nil {
		return 0, fmt.Errorf("create function %s: %w", f.Config.FunctionName, err)
	}
	return rev, nil
}

// UpdateFunction replaces a function if it is still at revision rev; ErrConflict otherwise.
func (s *Store) UpdateFunction(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("encode function: %w", err)
	}
	n, err := s.fns.Update(ctx, f.Config.FunctionName, b, rev)
	if err != nil {
		if isWrongSequence(err) {
			return 0, fmt.Errorf("function %s: %w", f.Config.FunctionName, ErrConflict)
		}
		return 0, fmt.Errorf("update function %s: %w", f.Config.FunctionName, err)
	}
	return n, nil
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// DeleteFunction removes a function; ErrNotFound if absent.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	if _, err := s.GetFunction(ctx, name); err != nil {
		return err
	}
	if err := s.fns.Purge(ctx, name); err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	return nil
}

// ListFunctions returns every function, sorted by name.
func (s *Store) ListFunctions(ctx context.Context) ([]*lambda.Function, error) {
	lister, err := s.fns.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]*lambda.Function, 0, len(names))
	for _, n := range names {
		f, err := s.GetFunction(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f.Function)
	}
	return out, nil
}

// WatchFunctions calls fn for every change to a function (f is nil when deleted), with the KV
// revision of the change, until ctx ends.
// It first replays the current state, then calls ready once.
func (s *Store) WatchFunctions(ctx context.Context, ready func(), fn func(name string, rev uint64, f *lambda.Function)) error {
	w, err := s.fns.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch functions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil
		case e = <-w.Updates():
		}
		if e == nil { // end of the initial replay
			ready()
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			fn(e.Key(), e.Revision(), nil)
			continue
		}
		f, err := decode(e.Value())
		if err != nil {
			s.log.Warn("skipping undecodable function record", "key", e.Key(), "err", err)
			continue
		}
		fn(e.Key(), e.Revision(), f)
	}
}

func decode(b []byte) (*lambda.Function, error) {
	var f lambda.Function
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// PutCode stores a code package under key (its hex SHA-256) unless it is already there.
func (s *Store) PutCode(ctx context.Context, key string, zip []byte) error {
	if _, err := s.code.GetInfo(ctx, key); err == nil {
		return nil
	}
	if _, err := s.code.PutBytes(ctx, key, zip); err != nil {
		return fmt.Errorf("store code %s: %w", key, err)
	}
	return nil
}

// GetCode returns the code package stored under key.
func (s *Store) GetCode(ctx context.Context, key string) ([]byte, error) {
	b, err := s.code.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get code %s: %w", key, err)
	}
	return b, nil
}

// DeleteCode removes a code package.
func (s *Store) DeleteCode(ctx context.Context, key string) error {
	if err := s.code.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete code %s: %w", key, err)
	}
	return nil
}
