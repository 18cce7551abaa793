package artifact

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// tmpPrefix starts the name of every directory the cache is still writing or deleting. Package
// directories are 64 hex digits, so the two never collide.
const tmpPrefix = ".tmp-"

// Cache holds unpacked packages on local disk, one directory per content hash, each unpacked
// once and never modified afterwards. A directory under its hash is always complete: packages are
// extracted into a temporary directory beside it and renamed into place.
//
// A Cache is safe for concurrent use, and several processes may share one directory, with one
// restriction: Sweep must not run while another process is unpacking into the same directory.
type Cache struct {
	dir string // absolute

	mu       sync.Mutex
	inflight map[string]*unpackCall // by sha; the caller that added it is unpacking
	active   map[string]bool        // names of this process's temporary directories
}

// unpackCall is one in-flight unpack that other Ensure calls for the same hash wait for.
type unpackCall struct {
	done chan struct{} // closed when the fields below are final
	err  error
	// abandoned is set when the leader failed because its own context ended; a waiter whose
	// context is still live tries again rather than inherit that cancellation.
	abandoned bool
}

// NewCache returns a cache in dir, creating the directory if needed.
func NewCache(dir string) (*Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("artifact cache: %w", err)
	}
	return &Cache{
		dir:      abs,
		inflight: make(map[string]*unpackCall),
		active:   make(map[string]bool),
	}, nil
}

// Path is where the package with this hex sha256 is (or would be) unpacked. shaHex must be 64
// lowercase hex digits, as hex.EncodeToString gives; for anything else Path returns "".
func (c *Cache) Path(shaHex string) string {
	if !validSha(shaHex) {
		return ""
	}
	return filepath.Join(c.dir, shaHex)
}

func validSha(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// Ensure returns the directory holding the unpacked package with this hex sha256, unpacking it
// if absent. fetch is called only when unpacking is needed and returns the zip bytes, whose
// sha256 must be shaHex. Concurrent calls for one hash in this process share one fetch and one
// unpack; a call whose ctx ends while waiting returns, and the unpack goes on for the others.
// Unpacking applies the same checks and limits as Validate and returns the same sentinels;
// ctx is checked between entries. On any failure nothing is left in the cache.
func (c *Cache) Ensure(ctx context.Context, shaHex string, lim Limits,
	fetch func(ctx context.Context) ([]byte, error)) (string, error) {
	if !validSha(shaHex) {
		return "", fmt.Errorf("artifact: invalid sha256 %q", shaHex)
	}
	final := c.Path(shaHex)
	for {
		ok, err := present(final)
		if err != nil {
			return "", err
		}
		if ok {
			return final, nil
		}
		c.mu.Lock()
		call, wait := c.inflight[shaHex]
		if !wait {
			call = &unpackCall{done: make(chan struct{})}
			c.inflight[shaHex] = call
		}
		c.mu.Unlock()
		if !wait {
			if err := c.lead(ctx, shaHex, lim, fetch, call); err != nil {
				return "", err
			}
			return final, nil
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return "", fmt.Errorf("unpack %s: %w", shaHex, ctx.Err())
		}
		if call.err != nil && !(call.abandoned && ctx.Err() == nil) {
			return "", call.err
		}
		// Success (or an abandoned attempt): look again rather than assume the directory.
	}
}

// lead runs the unpack for call and releases its waiters, even if fetch panics.
func (c *Cache) lead(ctx context.Context, shaHex string, lim Limits,
	fetch func(context.Context) ([]byte, error), call *unpackCall) error {
	defer func() {
		c.mu.Lock()
		delete(c.inflight, shaHex)
		c.mu.Unlock()
		close(call.done)
	}()
	call.err = c.unpack(ctx, shaHex, lim, fetch)
	call.abandoned = call.err != nil && ctx.Err() != nil
	return call.err
}

func (c *Cache) unpack(ctx context.Context, shaHex string, lim Limits,
	fetch func(context.Context) ([]byte, error)) (err error) {
	final := c.Path(shaHex)
	// Another process, or a leader that finished just before this one started, may have won.
	if ok, err := present(final); err != nil || ok {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}
	b, err := fetch(ctx)
	if err != nil {
		return fmt.Errorf("fetch package %s: %w", shaHex, err)
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != shaHex {
		return fmt.Errorf("artifact: package fetched for %s has sha256 %x", shaHex, got)
	}
	p, err := inspect(b, lim)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}

	c.mu.Lock()
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix+shaHex+"-")
	if err == nil {
		c.active[filepath.Base(tmp)] = true
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.RemoveAll(tmp))
		}
		c.mu.Lock()
		delete(c.active, filepath.Base(tmp))
		c.mu.Unlock()
	}()

	if err := p.extract(ctx, tmp); err != nil {
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if ok, _ := present(final); ok {
			// Another process published it first. Its copy is as good as ours; a leftover of
			// ours is only litter, which Sweep clears, so it is not this call's failure.
			_ = os.RemoveAll(tmp)
			return nil
		}
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}
	if err := syncDir(c.dir); err != nil {
		return fmt.Errorf("unpack %s: %w", shaHex, err)
	}
	return nil
}

// extract writes the package into the empty directory dir, depth first through one os.Root
// per directory, so every operation names a single component and costs the same at any depth.
// Within a directory, symlinks come last and no entry has a symlink as a parent, so nothing is
// ever written through a link; the os.Root refuses any path that would leave dir all the same.
// Every file and directory is fsynced, so the rename that publishes dir cannot outlive its
// contents in a power failure.
func (p *pkg) extract(ctx context.Context, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, e := range p.entries {
		if e.kind == kindDir {
			if err := p.copy(e, io.Discard); err != nil { // a directory must carry no data
				return err
			}
		}
	}
	if err := p.extractDir(ctx, root, p.root); err != nil {
		return err
	}
	return finishDir(root)
}

func (p *pkg) extractDir(ctx context.Context, r *os.Root, n *node) error {
	names := slices.Sorted(maps.Keys(n.children))
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch child := n.children[name]; child.kind {
		case kindDir:
			err = p.extractSubdir(ctx, r, name, child)
		case kindFile:
			err = p.writeFile(r, name, child.e)
		}
		if err != nil {
			return err
		}
	}
	for _, name := range names {
		child := n.children[name]
		if child.kind != kindSymlink {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.Symlink(child.e.target, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *pkg) extractSubdir(ctx context.Context, r *os.Root, name string, n *node) error {
	if err := r.Mkdir(name, 0o755); err != nil {
		return err
	}
	sub, err := r.OpenRoot(name)
	if err != nil {
		return err
	}
	defer sub.Close()
	if err := p.extractDir(ctx, sub, n); err != nil {
		return err
	}
	return finishDir(sub)
}

func (p *pkg) writeFile(r *os.Root, name string, e *entry) error {
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = p.copy(e, f)
	if err == nil {
		err = f.Chmod(e.perm) // exactly, whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// finishDir sets r's directory to 0755, whatever the umask, and fsyncs it.
func finishDir(r *os.Root) error {
	d, err := r.Open(".")
	if err != nil {
		return err
	}
	err = d.Chmod(0o755)
	if err == nil {
		err = d.Sync()
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// present reports whether dir exists as a directory.
func present(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("artifact: %s exists and is not a directory", dir)
	}
	return true, nil
}

// Remove deletes an unpacked package (by its hex sha256) or a merged directory (by its
// MergedName), used when nothing references it any more. It first renames the directory aside,
// so no caller ever sees a half-deleted one. Removing an absent one is not an error. Callers must
// not Remove a hash they are concurrently Ensuring, nor a merged directory in use.
func (c *Cache) Remove(name string) error {
	if !validSha(name) && !isMergedName(name) {
		return fmt.Errorf("%w: %q", errNotCacheEntry, name)
	}
	trashName := tmpPrefix + "rm-" + name + "-" + rand.Text()
	c.mu.Lock()
	c.active[trashName] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.active, trashName)
		c.mu.Unlock()
	}()
	trash := filepath.Join(c.dir, trashName)
	if err := os.Rename(filepath.Join(c.dir, name), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove %s: %w", name, err) // Sweep retries
	}
	return nil
}

// Entry is one published directory of the cache.
type Entry struct {
	Name    string // a package's hex sha256, or a MergedName
	Merged  bool
	ModTime time.Time // of the directory: about when it was unpacked or merged
}

// List returns the cache's published directories: unpacked packages and merged ones. Temporary
// directories and anything that is not the cache's own are left out.
func (c *Cache) List() ([]Entry, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("list artifact cache: %w", err)
	}
	var out []Entry
	for _, e := range ents {
		sha, merged := validSha(e.Name()), isMergedName(e.Name())
		if !e.IsDir() || !sha && !merged {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list artifact cache: %w", err)
		}
		out = append(out, Entry{Name: e.Name(), Merged: merged, ModTime: fi.ModTime()})
	}
	return out, nil
}

// Sweep removes temporary directories left by a crash (half-unpacked, half-merged and
// half-removed ones) and merged directories made by an older Flint, which were never checked as a
// whole. Call it at startup. It skips this process's own in-progress directories, but cannot tell
// another live process's from a dead one's, so it must not run while another process is
// unpacking into the same directory.
func (c *Cache) Sweep() error {
	c.mu.Lock()
	ents, err := os.ReadDir(c.dir)
	var stale []string
	for _, e := range ents {
		if (strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), legacyMergedPrefix)) && !c.active[e.Name()] {
			stale = append(stale, e.Name())
		}
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sweep artifact cache: %w", err)
	}
	var errs []error
	for _, name := range stale {
		if err := os.RemoveAll(filepath.Join(c.dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep artifact cache: %w", err)
	}
	return nil
}
