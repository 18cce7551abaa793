package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
)

// Function is a stored function with the KV revision that guards updates.
type Function struct {
	*lambda.Function
	Revision uint64
}

// Functions is the repository of functions' $LATEST records, and of what is shared with their
// versions: their sealed environment variables.
type Functions struct{ s *Store }

// Functions returns the functions repository.
func (s *Store) Functions() Functions { return Functions{s} }

// Get returns the function named name.
func (r Functions) Get(ctx context.Context, name string) (Function, error) {
	f, rev, err := r.s.fns.get(ctx, name)
	if err != nil {
		return Function{}, err
	}
	return Function{Function: f, Revision: rev}, nil
}

// Create stores a new function; ErrExists if the name is taken.
func (r Functions) Create(ctx context.Context, f *lambda.Function) (uint64, error) {
	return r.s.fns.create(ctx, f.Config.FunctionName, f)
}

// Update replaces a function if it is still at revision rev; ErrConflict otherwise.
func (r Functions) Update(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error) {
	return r.s.fns.update(ctx, f.Config.FunctionName, f, rev)
}

// Delete removes a function with its versions and aliases; ErrNotFound if absent. It
// returns the functions bucket's revision of the deletion (or a later one).
func (r Functions) Delete(ctx context.Context, name string) (uint64, error) {
	rev, err := r.s.fns.remove(ctx, name)
	if err != nil {
		return 0, err
	}
	return rev, r.s.deleteDependents(ctx, name)
}

// deleteDependents removes what belongs to a deleted function.
func (s *Store) deleteDependents(ctx context.Context, name string) error {
	urls, err := s.URLs().List(ctx, name)
	if err != nil {
		return err
	}
	for _, u := range urls {
		if err := s.urls.kv.Purge(ctx, u.ID); err != nil {
			return fmt.Errorf("delete function url %s: %w", u.ID, err)
		}
	}
	for _, kv := range []jetstream.KeyValue{s.versions.kv, s.aliases.kv, s.prov.kv, s.eic.kv, s.policies.kv} {
		lister, err := kv.ListKeysFiltered(ctx, name+".*")
		if err != nil {
			return fmt.Errorf("delete function %s: %w", name, err)
		}
		for k := range lister.Keys() {
			if err := kv.Purge(ctx, k); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
	}
	return nil
}

// List returns every function, sorted by name.
func (r Functions) List(ctx context.Context) ([]*lambda.Function, error) {
	return r.s.fns.list(ctx, ">")
}

// Page returns up to n functions whose names sort after after ("": from the first), sorted by
// name, and whether more follow; it reads only those functions' records. Like every listing it
// is refused at once while this cluster node has lost the quorum (the stream's leader may be
// beyond reach; the one-key reads are not).
func (r Functions) Page(ctx context.Context, after string, n int) ([]*lambda.Function, bool, error) {
	if err := r.s.refuse(); err != nil {
		return nil, false, err
	}
	fns, more, err := r.s.fns.page(ctx, r.s.js, ">", after, n)
	return fns, more, r.s.failed(err)
}

// Watch calls fn for every change to a function (f is nil when deleted), with the KV
// revision of the change, until ctx ends. It first replays the current state, then calls ready.
func (r Functions) Watch(ctx context.Context, ready func(), fn func(name string, rev uint64, f *lambda.Function)) error {
	return r.s.fns.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r Functions) Revision(ctx context.Context) (uint64, error) {
	return r.s.fns.revision(ctx, r.s.js)
}

// envAAD binds a function record's sealed variables to the record: an envelope copied into
// another record does not open.
func envAAD(bucket, key string) []byte { return []byte(bucket + "/" + key) }

// sealEnv stores a function's environment variables encrypted.
func (s *Store) sealEnv(bucket string) func(key string, f *lambda.Function) (*lambda.Function, error) {
	return func(key string, f *lambda.Function) (*lambda.Function, error) {
		vars := f.Env()
		if len(vars) == 0 {
			if f.EnvSealed == nil {
				return f, nil
			}
			c := *f
			c.EnvSealed = nil
			return &c, nil
		}
		env, err := s.keyring.SealMap(vars, envAAD(bucket, key))
		if err != nil {
			return nil, err
		}
		c := *f
		c.Config.Environment = nil
		if c.EnvSealed, err = json.Marshal(env); err != nil {
			return nil, err
		}
		return &c, nil
	}
}

// openEnv restores a function's environment variables from their envelope.
func (s *Store) openEnv(bucket string) func(key string, f *lambda.Function) error {
	return func(key string, f *lambda.Function) error {
		vars, err := s.openVars(bucket, key, f)
		if err != nil || vars == nil {
			return err
		}
		f.Config.Environment = &lambda.EnvironmentResp{Variables: vars}
		f.EnvSealed = nil
		return nil
	}
}

func (s *Store) openVars(bucket, key string, f *lambda.Function) (map[string]string, error) {
	if len(f.EnvSealed) == 0 {
		return f.Env(), nil
	}
	var env crypt.Envelope
	if err := json.Unmarshal(f.EnvSealed, &env); err != nil {
		return nil, err
	}
	return s.keyring.OpenMap(env, envAAD(bucket, key))
}

// Sealed returns f (a function or a version) as the store keeps it, its variables encrypted (f itself if it has none):
// what the invoke cache holds, so that variables are in the clear only while an environment
// starts or an API read returns them.
func (r Functions) Sealed(f *lambda.Function) (*lambda.Function, error) {
	s := r.s
	if len(f.Env()) == 0 {
		return f, nil
	}
	if f.Config.Version == "" || f.Config.Version == "$LATEST" {
		return s.sealEnv(functionsBucket)(f.Config.FunctionName, f)
	}
	n, err := strconv.Atoi(f.Config.Version)
	if err != nil {
		return nil, fmt.Errorf("function %s: version %q", f.Config.FunctionName, f.Config.Version)
	}
	return s.sealEnv(versionsBucket)(VersionKey(f.Config.FunctionName, n), f)
}

// Env decrypts the environment variables of a function or version record as a watch
// delivered it (sealed): called when an environment starts, never on a warm invoke.
func (r Functions) Env(f *lambda.Function) (map[string]string, error) {
	s := r.s
	if f.Config.Version == "" || f.Config.Version == "$LATEST" {
		return s.openVars(functionsBucket, f.Config.FunctionName, f)
	}
	n, err := strconv.Atoi(f.Config.Version)
	if err != nil {
		return nil, fmt.Errorf("function %s: version %q", f.Config.FunctionName, f.Config.Version)
	}
	return s.openVars(versionsBucket, VersionKey(f.Config.FunctionName, n), f)
}

// RewrapEnv moves every function's and version's sealed variables to the keyring's active
// master key (after a rotation) without decrypting them, and returns how many records it
// rewrote. Records changed meanwhile are read again.
func (s *Store) RewrapEnv(ctx context.Context) (int, error) {
	n := 0
	for _, b := range []bucket[lambda.Function]{s.fns, s.versions} {
		keys, err := b.keys(ctx, ">")
		if err != nil {
			return n, err
		}
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				e, err := b.kv.Get(ctx, key)
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					break
				}
				if err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				var f lambda.Function
				if err := json.Unmarshal(e.Value(), &f); err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				if len(f.EnvSealed) == 0 {
					break
				}
				var env crypt.Envelope
				if err := json.Unmarshal(f.EnvSealed, &env); err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				next, changed, err := s.keyring.Rewrap(env)
				if err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				if !changed {
					break
				}
				if f.EnvSealed, err = json.Marshal(next); err != nil {
					return n, err
				}
				data, err := json.Marshal(&f)
				if err != nil {
					return n, err
				}
				if _, err := b.kv.Update(ctx, key, data, e.Revision()); err == nil {
					n++
					break
				} else if attempt >= 5 {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
			}
		}
	}
	return n, nil
}
