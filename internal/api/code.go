package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/artifact"
)

// codeGC keeps code (objects in the store, unpacked and merged directories in the local cache)
// exactly as long as something references it: a function, a published version or a layer
// version. A request that stores code pins its key from before the store write until its record
// is written or it is refused; a refused request's code is removed at once unless something else
// references or pins it. Everything else unreferenced is collected by RunCodeGC once it has stayed
// unreferenced for the grace period, so environments of a retired pool still running keep their
// directories.
type codeGC struct {
	grace time.Duration
	now   func() time.Time
	kick  chan struct{} // a deletion happened: collect soon

	// mu guards the maps and is held while a key is removed, so a request cannot pin (and so
	// reuse) a key whose directory or object is half gone.
	mu   sync.Mutex
	pins map[string]int
	// seen, during a collection only, holds every key pinned since the collection began: such
	// a key may have been referenced by a record written after the references were read.
	seen map[string]bool
	// collecting serialises collections; it guards since and is taken before mu.
	collecting sync.Mutex
	// since is when a collection first found each key unreferenced.
	since map[string]time.Time
}

func newCodeGC(grace time.Duration) *codeGC {
	return &codeGC{grace: grace, now: time.Now, kick: make(chan struct{}, 1),
		pins: make(map[string]int), since: make(map[string]time.Time)}
}

func (g *codeGC) pin(key string) {
	g.mu.Lock()
	g.pins[key]++
	if g.seen != nil {
		g.seen[key] = true
	}
	g.mu.Unlock()
}

func (g *codeGC) unpin(key string) {
	g.mu.Lock()
	if g.pins[key]--; g.pins[key] <= 0 {
		delete(g.pins, key)
	}
	g.mu.Unlock()
}

// wake asks Run for a collection soon, without waiting.
func (g *codeGC) wake() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// stagedCode is a validated package stored and unpacked for a request that has not yet written
// the record referencing it. Exactly one of keep or drop must be called.
type stagedCode struct {
	a   *API
	key string
}

// storeCode stores a package validated by validateCode (object store, then the local unpack
// cache so the first cold start does not wait for it), pinned until the caller keeps or drops
// it. On error nothing of it is left that nothing else uses.
func (a *API) storeCode(ctx context.Context, zip []byte, info artifact.Info) (*stagedCode, error) {
	s := &stagedCode{a: a, key: hex.EncodeToString(info.Sha256[:])}
	a.gc.pin(s.key)
	if err := a.store.Code().Put(ctx, s.key, zip); err != nil {
		s.drop(ctx)
		return nil, err
	}
	if _, err := a.code.Ensure(ctx, s.key, a.limits, func(context.Context) ([]byte, error) { return zip, nil }); err != nil {
		s.drop(ctx)
		return nil, err
	}
	return s, nil
}

// keep is called once the record referencing the code is written.
func (s *stagedCode) keep() { s.a.gc.unpin(s.key) }

// drop is called when the request is refused after storing the code: the code goes at once,
// unless something references it or another request holds it.
func (s *stagedCode) drop(ctx context.Context) {
	s.a.gc.unpin(s.key)
	// The request may be over (its client gone); the clean-up is not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.a.collectKey(ctx, s.key); err != nil {
		s.a.log.Warn("removing the code of a refused request (collected later)", "code", s.key, "err", err)
		s.a.gc.wake()
	}
}

// collectKey removes key now if nothing references or pins it.
func (a *API) collectKey(ctx context.Context, key string) error {
	g := a.gc
	g.collecting.Lock()
	defer g.collecting.Unlock()
	g.mu.Lock()
	if g.pins[key] > 0 {
		g.mu.Unlock()
		return nil
	}
	g.seen = make(map[string]bool)
	g.mu.Unlock()
	defer a.endCollection()
	refs, err := a.codeReferences(ctx)
	if err != nil {
		return err
	}
	if refs[key] {
		return nil
	}
	_, err = a.removeCode(ctx, key, false)
	return err
}

func (a *API) endCollection() {
	a.gc.mu.Lock()
	a.gc.seen = nil
	a.gc.mu.Unlock()
}

// removeCode removes key's object (unless merged: merged directories have none) and local
// directory, unless a request pinned it meanwhile. It reports whether it removed anything.
func (a *API) removeCode(ctx context.Context, key string, merged bool) (bool, error) {
	g := a.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pins[key] > 0 || g.seen[key] {
		return false, nil
	}
	// The directory first: were the object gone and the directory not, a later request would
	// find the directory and never store the object again.
	if err := a.code.Remove(key); err != nil {
		return false, err
	}
	if !merged {
		if err := a.store.Code().Delete(ctx, key); err != nil {
			return false, err
		}
	}
	return true, nil
}

// codeReferences returns every code key and merged-directory name a function, version or layer
// version references.
func (a *API) codeReferences(ctx context.Context) (map[string]bool, error) {
	refs := make(map[string]bool)
	use := func(code string, layers []string) {
		refs[code] = true
		dirs := make([]string, 0, len(layers))
		for _, k := range layers {
			refs[k] = true
			dirs = append(dirs, a.code.Path(k))
		}
		if len(dirs) > 1 {
			refs[a.code.MergedName(dirs)] = true
		}
	}
	fns, err := a.store.Functions().List(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		use(f.CodeKey, f.LayerKeys)
		vs, err := a.store.Versions().List(ctx, f.Config.FunctionName)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			use(v.CodeKey, v.LayerKeys)
		}
	}
	layers, err := a.store.Layers().List(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		refs[l.CodeKey] = true
	}
	return refs, nil
}

// CollectCode removes the code nothing has referenced for the grace period: objects in the store,
// unpacked packages and merged directories in this node's cache. Keys are listed before the
// references are read, so code stored meanwhile is not even considered.
func (a *API) CollectCode(ctx context.Context) (removed int, err error) {
	g := a.gc
	g.collecting.Lock()
	defer g.collecting.Unlock()
	g.mu.Lock()
	g.seen = make(map[string]bool, len(g.pins))
	for k := range g.pins {
		g.seen[k] = true
	}
	g.mu.Unlock()
	defer a.endCollection()

	type candidate struct {
		merged   bool
		storedAt time.Time // the object's; zero when there is none
	}
	cands := make(map[string]candidate)
	ents, err := a.code.List()
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		cands[e.Name] = candidate{merged: e.Merged}
	}
	objs, err := a.store.Code().List(ctx)
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		cands[o.Key] = candidate{storedAt: o.ModTime}
	}
	refs, err := a.codeReferences(ctx)
	if err != nil {
		return 0, err
	}
	now := g.now()
	var errs []error
	for k := range g.since {
		if _, ok := cands[k]; !ok || refs[k] {
			delete(g.since, k)
		}
	}
	for k, c := range cands {
		if refs[k] {
			continue
		}
		first, ok := g.since[k]
		if !ok {
			first = now
			g.since[k] = now
		}
		// Another node may have stored the object for a function whose record it has not
		// written yet: its pin is not ours to see, so the object's age must pass the grace too.
		if now.Sub(first) < g.grace || now.Sub(c.storedAt) < g.grace {
			continue
		}
		done, err := a.removeCode(ctx, k, c.merged)
		if err != nil {
			errs = append(errs, fmt.Errorf("collect code %s: %w", k, err))
			continue
		}
		if done {
			removed++
			delete(g.since, k)
		}
	}
	return removed, errors.Join(errs...)
}

// RunCodeGC collects unreferenced code at once, then every interval and soon after deletions,
// until ctx ends. Only one RunCodeGC may run per API.
func (a *API) RunCodeGC(ctx context.Context) error {
	interval := min(max(a.gc.grace/2, time.Second), 10*time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := a.CollectCode(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("collecting unreferenced code", "err", err)
		} else if n > 0 {
			a.log.Info("collected unreferenced code", "removed", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-a.gc.kick:
		}
	}
}
