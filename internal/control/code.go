package control

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// codeObjects is the code packages' repository (store.Code).
type codeObjects interface {
	Put(ctx context.Context, key string, zip []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context) ([]store.StoredCode, error)
}

// functionLister lists functions' $LATEST records (store.Functions).
type functionLister interface {
	List(ctx context.Context) ([]*lambda.Function, error)
}

// versionLister lists a function's published versions, or every function's (store.Versions).
type versionLister interface {
	List(ctx context.Context, name string) ([]*lambda.Function, error)
	All(ctx context.Context) ([]*lambda.Function, error)
}

// layerLister lists layer versions, of every layer when name is "" (store.Layers).
type layerLister interface {
	List(ctx context.Context, name string) ([]*lambda.StoredLayer, error)
}

// CodeInput is a package as CreateFunction's Code and PublishLayerVersion's Content give it.
type CodeInput struct {
	ZipFile         []byte `json:"ZipFile"`
	S3Bucket        string `json:"S3Bucket"`
	S3Key           string `json:"S3Key"`
	S3ObjectVersion string `json:"S3ObjectVersion"`
	ImageUri        string `json:"ImageUri"`
}

// Code is the code store: it validates packages, stores them (object store, then this node's
// unpack cache) and keeps them exactly as long as something references them: a function, a
// published version or a layer version. A request that stores code pins its key from before the
// store write until its record is written or it is refused; a refused request's code is removed
// at once unless something else references or pins it. Everything else unreferenced is collected
// by Run once it has stayed unreferenced for the grace period, so environments of a retired pool
// still running keep their directories.
type Code struct {
	objects   codeObjects
	cache     *artifact.Cache
	limits    artifact.Limits
	functions functionLister
	versions  versionLister
	layers    layerLister
	log       *slog.Logger

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

// newCode builds the code store; functions, versions and layers are read for the references.
func newCode(objects codeObjects, functions functionLister, versions versionLister, layers layerLister,
	cache *artifact.Cache, limits artifact.Limits, grace time.Duration, log *slog.Logger) *Code {
	return &Code{objects: objects, cache: cache, limits: limits, functions: functions, versions: versions,
		layers: layers, log: log, grace: grace, now: time.Now, kick: make(chan struct{}, 1),
		pins: make(map[string]int), since: make(map[string]time.Time)}
}

// Validate checks a package without storing anything.
func (c *Code) Validate(code *CodeInput) (artifact.Info, error) {
	if code.ImageUri != "" {
		return artifact.Info{}, apierr.InvalidParameterValue("Flint runs zip packages only; ImageUri is not supported.")
	}
	if code.S3Bucket != "" || code.S3Key != "" {
		return artifact.Info{}, apierr.InvalidParameterValue("Flint accepts code as ZipFile only; S3Bucket/S3Key are not supported.")
	}
	if code.ZipFile == nil {
		return artifact.Info{}, apierr.InvalidParameterValue("Please provide a source for function code.")
	}
	info, err := artifact.Validate(code.ZipFile, c.limits)
	switch {
	case errors.Is(err, artifact.ErrZippedTooLarge):
		return info, apierr.RequestEntityTooLarge("Zipped size must be smaller than %d bytes", c.limits.MaxZipped)
	case errors.Is(err, artifact.ErrUnzippedTooLarge):
		return info, apierr.InvalidParameterValue("Unzipped size must be smaller than %d bytes", c.limits.MaxUnzipped)
	case errors.Is(err, artifact.ErrUnsafePath), errors.Is(err, artifact.ErrUnsafeSymlink):
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again. (%v)", err)
	case errors.Is(err, artifact.ErrTooManyFiles):
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file: %v", err)
	case err != nil:
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	return info, nil
}

// checkUnzipped applies Lambda's 250 MB limit to a function's code and layers together.
func (c *Code) checkUnzipped(code, layers int64) error {
	if code+layers > c.limits.MaxUnzipped {
		return apierr.InvalidParameterValue("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.", c.limits.MaxUnzipped, code+layers)
	}
	return nil
}

// Package returns the package stored under key.
func (c *Code) Package(ctx context.Context, key string) ([]byte, error) {
	return c.objects.Get(ctx, key)
}

// Unpacked returns key's unpacked directory, unpacking the stored package first if this node
// has not yet.
func (c *Code) Unpacked(ctx context.Context, key string) (string, error) {
	return c.cache.Ensure(ctx, key, c.limits, func(ctx context.Context) ([]byte, error) { return c.objects.Get(ctx, key) })
}

func (c *Code) pin(key string) {
	c.mu.Lock()
	c.pins[key]++
	if c.seen != nil {
		c.seen[key] = true
	}
	c.mu.Unlock()
}

func (c *Code) unpin(key string) {
	c.mu.Lock()
	if c.pins[key]--; c.pins[key] <= 0 {
		delete(c.pins, key)
	}
	c.mu.Unlock()
}

// Wake asks Run for a collection soon, without waiting: something that referenced code is gone.
func (c *Code) Wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// StagedCode is a validated package stored and unpacked for a request that has not yet written
// the record referencing it. Exactly one of Keep or Drop must be called.
type StagedCode struct {
	c   *Code
	key string
}

// Key is the package's key (its hex SHA-256), which the record references.
func (s *StagedCode) Key() string { return s.key }

// Stage stores a package validated by Validate (object store, then the local unpack cache so
// the first cold start does not wait for it), pinned until the caller keeps or drops it. On
// error nothing of it is left that nothing else uses.
func (c *Code) Stage(ctx context.Context, zip []byte, info artifact.Info) (*StagedCode, error) {
	s := &StagedCode{c: c, key: hex.EncodeToString(info.Sha256[:])}
	c.pin(s.key)
	if err := c.objects.Put(ctx, s.key, zip); err != nil {
		s.Drop(ctx)
		return nil, err
	}
	if _, err := c.cache.Ensure(ctx, s.key, c.limits, func(context.Context) ([]byte, error) { return zip, nil }); err != nil {
		s.Drop(ctx)
		return nil, err
	}
	return s, nil
}

// Keep is called once the record referencing the code is written.
func (s *StagedCode) Keep() { s.c.unpin(s.key) }

// Drop is called when the request is refused after storing the code: the code goes at once,
// unless something references it or another request holds it.
func (s *StagedCode) Drop(ctx context.Context) {
	s.c.unpin(s.key)
	// The request may be over (its client gone); the clean-up is not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.c.collectKey(ctx, s.key); err != nil {
		s.c.log.Warn("removing the code of a refused request (collected later)", "code", s.key, "err", err)
		s.c.Wake()
	}
}

// collectKey removes key now if nothing references or pins it.
func (c *Code) collectKey(ctx context.Context, key string) error {
	c.collecting.Lock()
	defer c.collecting.Unlock()
	c.mu.Lock()
	if c.pins[key] > 0 {
		c.mu.Unlock()
		return nil
	}
	c.seen = make(map[string]bool)
	c.mu.Unlock()
	defer c.endCollection()
	refs, err := c.references(ctx)
	if err != nil {
		return err
	}
	if refs[key] {
		return nil
	}
	_, err = c.remove(ctx, key, false)
	return err
}

func (c *Code) endCollection() {
	c.mu.Lock()
	c.seen = nil
	c.mu.Unlock()
}

// remove removes key's object (unless merged: merged directories have none) and local
// directory, unless a request pinned it meanwhile. It reports whether it removed anything.
func (c *Code) remove(ctx context.Context, key string, merged bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pins[key] > 0 || c.seen[key] {
		return false, nil
	}
	// The directory first: were the object gone and the directory not, a later request would
	// find the directory and never store the object again.
	if err := c.cache.Remove(key); err != nil {
		return false, err
	}
	if !merged {
		if err := c.objects.Delete(ctx, key); err != nil {
			return false, err
		}
	}
	return true, nil
}

// references returns every code key and merged-directory name a function, version or layer
// version references.
func (c *Code) references(ctx context.Context) (map[string]bool, error) {
	refs := make(map[string]bool)
	use := func(code string, layers []string) {
		refs[code] = true
		dirs := make([]string, 0, len(layers))
		for _, k := range layers {
			refs[k] = true
			dirs = append(dirs, c.cache.Path(k))
		}
		if len(dirs) > 1 {
			refs[c.cache.MergedName(dirs)] = true
		}
	}
	fns, err := c.functions.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		use(f.CodeKey, f.LayerKeys)
	}
	// Every version in one listing: one a function cost a JetStream consumer each, which with
	// 1,000 functions was most of a server's start-up CPU (a collection runs at start).
	vs, err := c.versions.All(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		use(v.CodeKey, v.LayerKeys)
	}
	layers, err := c.layers.List(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		refs[l.CodeKey] = true
	}
	return refs, nil
}

// Collect removes the code nothing has referenced for the grace period: objects in the store,
// unpacked packages and merged directories in this node's cache. Keys are listed before the
// references are read, so code stored meanwhile is not even considered.
func (c *Code) Collect(ctx context.Context) (removed int, err error) {
	c.collecting.Lock()
	defer c.collecting.Unlock()
	c.mu.Lock()
	c.seen = make(map[string]bool, len(c.pins))
	for k := range c.pins {
		c.seen[k] = true
	}
	c.mu.Unlock()
	defer c.endCollection()

	type candidate struct {
		merged   bool
		storedAt time.Time // the object's; zero when there is none
	}
	cands := make(map[string]candidate)
	ents, err := c.cache.List()
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		cands[e.Name] = candidate{merged: e.Merged}
	}
	objs, err := c.objects.List(ctx)
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		cands[o.Key] = candidate{storedAt: o.ModTime}
	}
	refs, err := c.references(ctx)
	if err != nil {
		return 0, err
	}
	now := c.now()
	var errs []error
	for k := range c.since {
		if _, ok := cands[k]; !ok || refs[k] {
			delete(c.since, k)
		}
	}
	for k, cand := range cands {
		if refs[k] {
			continue
		}
		first, ok := c.since[k]
		if !ok {
			first = now
			c.since[k] = now
		}
		// Another node may have stored the object for a function whose record it has not
		// written yet: its pin is not ours to see, so the object's age must pass the grace too.
		if now.Sub(first) < c.grace || now.Sub(cand.storedAt) < c.grace {
			continue
		}
		done, err := c.remove(ctx, k, cand.merged)
		if err != nil {
			errs = append(errs, fmt.Errorf("collect code %s: %w", k, err))
			continue
		}
		if done {
			removed++
			delete(c.since, k)
		}
	}
	return removed, errors.Join(errs...)
}

// Run collects unreferenced code at once, then every interval and soon after deletions, until
// ctx ends. Only one Run may run per Code.
func (c *Code) Run(ctx context.Context) error {
	interval := min(max(c.grace/2, time.Second), 10*time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := c.Collect(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("collecting unreferenced code", "err", err)
		} else if n > 0 {
			c.log.Info("collected unreferenced code", "removed", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.kick:
		}
	}
}

// Input is a request's package as the services that store code take it (a Package).
func (c *Code) Input(in *CodeInput) Package { return codePackage{c, in} }

type codePackage struct {
	c  *Code
	in *CodeInput
}

func (p codePackage) Validate() (artifact.Info, error) { return p.c.Validate(p.in) }

func (p codePackage) Stage(ctx context.Context, info artifact.Info) (StagedPackage, error) {
	s, err := p.c.Stage(ctx, p.in.ZipFile, info)
	if err != nil {
		return nil, err
	}
	return s, nil
}
