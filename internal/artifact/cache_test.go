package artifact

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fetcher serves fixed bytes and counts calls.
type fetcher struct {
	b     []byte
	calls atomic.Int32
}

func (f *fetcher) fetch(context.Context) ([]byte, error) {
	f.calls.Add(1)
	return f.b, nil
}

func newCache(t *testing.T) *Cache {
	t.Helper()
	c, err := NewCache(filepath.Join(t.TempDir(), "code"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestEnsureUnpacks(t *testing.T) {
	b := buildZip(t,
		zent{"bootstrap", "#!/bin/sh\necho hi\n", 0},
		zent{"sub/bootstrap", "not the entry point", 0},
		zent{"handler.py", "def handler(e, c): pass\n", 0},
		zent{"bin/", "", fs.ModeDir | 0o700},
		zent{"bin/tool", "\x7fELF", 0o700},
		zent{"run.sh", "#!/bin/sh\n", 0o744},
		zent{"other-x.sh", "#!/bin/sh\n", 0o604 | 0o001},
		zent{"secret.txt", "s", 0o600},
		zent{"readonly.txt", "r", 0o400},
		zent{"setuid", "u", fs.ModeSetuid | 0o4755},
		file("lib/node/index.js", "module.exports = 1\n"),
		link("current", "lib"),
		link("lib/node/self", "."),
		link("lib/up", "../bin/tool"),
	)
	sha := shaHex(b)
	c := newCache(t)
	f := &fetcher{b: b}
	got, err := c.Ensure(context.Background(), sha, DefaultLimits(), f.fetch)
	if err != nil {
		t.Fatalf("Ensure() error = %v", err)
	}
	if want := filepath.Join(c.dir, sha); got != want || c.Path(sha) != want {
		t.Fatalf("Ensure() = %q, Path() = %q, want %q", got, c.Path(sha), want)
	}

	tests := []struct {
		name   string
		mode   fs.FileMode // type and permission bits
		body   string      // file content or symlink target
		isLink bool
	}{
		{".", fs.ModeDir | 0o755, "", false},
		{"bootstrap", 0o755, "#!/bin/sh\necho hi\n", false},
		{"sub", fs.ModeDir | 0o755, "", false},
		{"sub/bootstrap", 0o644, "not the entry point", false},
		{"handler.py", 0o644, "def handler(e, c): pass\n", false},
		{"bin", fs.ModeDir | 0o755, "", false},
		{"bin/tool", 0o755, "\x7fELF", false},
		{"run.sh", 0o755, "#!/bin/sh\n", false},
		{"other-x.sh", 0o755, "#!/bin/sh\n", false},
		{"secret.txt", 0o644, "s", false},
		{"readonly.txt", 0o644, "r", false},
		{"setuid", 0o755, "u", false},
		{"lib", fs.ModeDir | 0o755, "", false},
		{"lib/node", fs.ModeDir | 0o755, "", false},
		{"lib/node/index.js", 0o644, "module.exports = 1\n", false},
		{"current", fs.ModeSymlink, "lib", true},
		{"lib/node/self", fs.ModeSymlink, ".", true},
		{"lib/up", fs.ModeSymlink, "../bin/tool", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(got, tt.name)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			gotMode := fi.Mode()
			if tt.isLink {
				gotMode = fi.Mode().Type() // symlink permissions are meaningless on Linux
			}
			if gotMode != tt.mode {
				t.Errorf("mode = %v, want %v", gotMode, tt.mode)
			}
			switch {
			case tt.isLink:
				target, err := os.Readlink(p)
				if err != nil || target != tt.body {
					t.Errorf("Readlink() = %q, %v, want %q", target, err, tt.body)
				}
			case !fi.IsDir():
				data, err := os.ReadFile(p)
				if err != nil || string(data) != tt.body {
					t.Errorf("content = %q, %v, want %q", data, err, tt.body)
				}
			}
		})
	}
	if got, want := entries(t, c.dir), []string{sha}; !slices.Equal(got, sorted(want)) {
		t.Errorf("cache holds %q, want %q", got, want)
	}
}

// TestEnsureDeepTree unpacks a tree deeper than any real package, with a link that climbs it.
func TestEnsureDeepTree(t *testing.T) {
	deep := strings.Repeat("d/", 300)
	b := buildZip(t, file(deep+"f", "bottom"), link(deep+"top", strings.Repeat("../", 300)+"g"), file("g", "top"))
	c := newCache(t)
	got, err := c.Ensure(context.Background(), shaHex(b), DefaultLimits(), (&fetcher{b: b}).fetch)
	if err != nil {
		t.Fatalf("Ensure() error = %v", err)
	}
	for name, want := range map[string]string{deep + "f": "bottom", deep + "top": "top"} {
		data, err := os.ReadFile(filepath.Join(got, name))
		if err != nil || string(data) != want {
			t.Errorf("ReadFile(%.20s...) = %q, %v, want %q", name, data, err, want)
		}
	}
}

func TestEnsureEmptyPackage(t *testing.T) {
	b := buildZip(t)
	c := newCache(t)
	f := &fetcher{b: b}
	got, err := c.Ensure(context.Background(), shaHex(b), DefaultLimits(), f.fetch)
	if err != nil {
		t.Fatalf("Ensure() error = %v", err)
	}
	if names := entries(t, got); len(names) != 0 {
		t.Errorf("empty package unpacked to %q, want nothing", names)
	}
}

func TestEnsureFetchesOnce(t *testing.T) {
	b := buildZip(t, file("index.js", "x"))
	sha := shaHex(b)
	c := newCache(t)
	f := &fetcher{b: b}
	for i := 0; i < 3; i++ {
		if _, err := c.Ensure(context.Background(), sha, DefaultLimits(), f.fetch); err != nil {
			t.Fatalf("Ensure() #%d error = %v", i, err)
		}
	}
	// A restarted process finds the package on disk.
	c2, err := NewCache(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Ensure(context.Background(), sha, DefaultLimits(), f.fetch); err != nil {
		t.Fatalf("Ensure() after restart error = %v", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetch called %d times, want 1", got)
	}
}

func TestEnsureConcurrent(t *testing.T) {
	b := buildZip(t, file("index.js", "x"), file("lib/a.js", strings.Repeat("a", 1<<20)))
	sha := shaHex(b)
	c := newCache(t)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return b, nil
	}
	const n = 20
	var started, done sync.WaitGroup
	paths := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			paths[i], errs[i] = c.Ensure(context.Background(), sha, DefaultLimits(), fetch)
		}()
	}
	started.Wait()
	time.Sleep(10 * time.Millisecond) // let most callers queue behind the first; not required
	close(release)
	done.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || paths[i] != c.Path(sha) {
			t.Errorf("Ensure() #%d = %q, %v, want %q", i, paths[i], errs[i], c.Path(sha))
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("fetch called %d times, want 1", got)
	}
	if got, want := entries(t, c.dir), []string{sha}; !slices.Equal(got, sorted(want)) {
		t.Errorf("cache holds %q, want %q", got, want)
	}
}

// TestEnsureTwoProcesses has two caches (as two processes would) unpack the same package into
// one directory at the same time: both fetch, one rename wins, both return the complete copy.
func TestEnsureTwoProcesses(t *testing.T) {
	b := buildZip(t, file("index.js", "x"), file("lib/a.js", strings.Repeat("a", 1<<20)))
	sha := shaHex(b)
	dir := filepath.Join(t.TempDir(), "code")
	var both sync.WaitGroup
	both.Add(2)
	fetch := func(ctx context.Context) ([]byte, error) {
		both.Done()
		both.Wait() // neither unpacks before both have decided to
		return b, nil
	}
	var wg sync.WaitGroup
	var paths [2]string
	var errs [2]error
	for i := range 2 {
		c, err := NewCache(dir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = c.Ensure(context.Background(), sha, DefaultLimits(), fetch)
		}()
	}
	wg.Wait()
	want := filepath.Join(dir, sha)
	for i := range 2 {
		if errs[i] != nil || paths[i] != want {
			t.Errorf("Ensure() #%d = %q, %v, want %q", i, paths[i], errs[i], want)
		}
	}
	data, err := os.ReadFile(filepath.Join(want, "lib/a.js"))
	if err != nil || len(data) != 1<<20 {
		t.Errorf("lib/a.js = %d bytes, %v, want %d", len(data), err, 1<<20)
	}
	if got, want := entries(t, dir), []string{sha}; !slices.Equal(got, sorted(want)) {
		t.Errorf("cache holds %q, want %q", got, want)
	}
}

func TestEnsureFailuresLeaveNothing(t *testing.T) {
	good := buildZip(t, file("index.js", "x"))
	slip := buildZip(t, file("index.js", "x"), file("../../evil", "x"))
	bomb := bombZip(t, 300, 300<<20)
	outLink := buildZip(t, file("index.js", "x"), link("etc", "/etc"))
	lateCorrupt := buildRaw(t, zipHeader("f", 99), []byte("abc"))
	lateBomb := func() []byte { // a real file is written before the bomb is reached
		return buildZip(t, file("a.txt", strings.Repeat("a", 1000)), zent{"zeros", string(make([]byte, 3<<20)), 0o644})
	}()
	errFetch := errors.New("store unavailable")

	tests := []struct {
		name  string
		sha   string
		fetch func(context.Context) ([]byte, error)
		lim   Limits
		want  error // wrapped by the error; nil: any error
	}{
		{"sha mismatch", shaHex([]byte("something else")), (&fetcher{b: good}).fetch, Limits{}, nil},
		{"fetch error", shaHex(good), func(context.Context) ([]byte, error) { return nil, errFetch }, Limits{}, errFetch},
		{"zip slip", shaHex(slip), (&fetcher{b: slip}).fetch, Limits{}, ErrUnsafePath},
		{"symlink out", shaHex(outLink), (&fetcher{b: outLink}).fetch, Limits{}, ErrUnsafeSymlink},
		{"zip bomb", shaHex(bomb), (&fetcher{b: bomb}).fetch, Limits{MaxUnzipped: 10 << 20}, ErrUnzippedTooLarge},
		{"bomb after a file", shaHex(lateBomb), (&fetcher{b: lateBomb}).fetch, Limits{MaxUnzipped: 1 << 20}, ErrUnzippedTooLarge},
		{"unknown method", shaHex(lateCorrupt), (&fetcher{b: lateCorrupt}).fetch, Limits{}, ErrCorrupt},
		{"zipped too large", shaHex(good), (&fetcher{b: good}).fetch, Limits{MaxZipped: 10}, ErrZippedTooLarge},
		{"too many files", shaHex(slip), (&fetcher{b: slip}).fetch, Limits{MaxFiles: 1}, ErrTooManyFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			got, err := c.Ensure(context.Background(), tt.sha, tt.lim, tt.fetch)
			if err == nil || got != "" {
				t.Fatalf("Ensure() = %q, %v, want an error", got, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Ensure() error = %v, want %v", err, tt.want)
			}
			if names := entries(t, c.dir); len(names) != 0 {
				t.Errorf("cache holds %q after failure, want nothing", names)
			}
		})
	}
}

func zipHeader(name string, method uint16) *zip.FileHeader {
	return &zip.FileHeader{Name: name, Method: method, CompressedSize64: 3, UncompressedSize64: 3}
}

func TestEnsureInvalidSha(t *testing.T) {
	c := newCache(t)
	f := &fetcher{b: buildZip(t)}
	for _, sha := range []string{"", "../../etc", strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if got, err := c.Ensure(context.Background(), sha, DefaultLimits(), f.fetch); err == nil {
			t.Errorf("Ensure(%q) = %q, nil, want an error", sha, got)
		}
		if got := c.Path(sha); got != "" {
			t.Errorf("Path(%q) = %q, want \"\"", sha, got)
		}
		if err := c.Remove(sha); err == nil {
			t.Errorf("Remove(%q) = nil, want an error", sha)
		}
	}
	if got := f.calls.Load(); got != 0 {
		t.Errorf("fetch called %d times, want 0", got)
	}
}

func TestEnsureContext(t *testing.T) {
	b := buildZip(t, file("a", "1"), file("b", "2"), file("c/d", "3"), link("e", "a"))
	sha := shaHex(b)

	t.Run("cancelled before", func(t *testing.T) {
		c := newCache(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := &fetcher{b: b}
		_, err := c.Ensure(ctx, sha, DefaultLimits(), f.fetch)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Ensure() error = %v, want context.Canceled", err)
		}
		if got := f.calls.Load(); got != 0 {
			t.Errorf("fetch called %d times, want 0", got)
		}
	})

	t.Run("cancelled while unpacking", func(t *testing.T) {
		c := newCache(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fetch := func(context.Context) ([]byte, error) {
			cancel() // the next check between entries sees it
			return b, nil
		}
		_, err := c.Ensure(ctx, sha, DefaultLimits(), fetch)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Ensure() error = %v, want context.Canceled", err)
		}
		if names := entries(t, c.dir); len(names) != 0 {
			t.Errorf("cache holds %q after cancellation, want nothing", names)
		}
	})

	t.Run("waiter gives up, leader goes on", func(t *testing.T) {
		c := newCache(t)
		fetching, release := make(chan struct{}), make(chan struct{})
		leaderFetch := func(context.Context) ([]byte, error) {
			close(fetching)
			<-release
			return b, nil
		}
		leaderDone := make(chan error, 1)
		go func() {
			_, err := c.Ensure(context.Background(), sha, DefaultLimits(), leaderFetch)
			leaderDone <- err
		}()
		<-fetching
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		waiter := &fetcher{b: b}
		if _, err := c.Ensure(ctx, sha, DefaultLimits(), waiter.fetch); !errors.Is(err, context.Canceled) {
			t.Errorf("waiter Ensure() error = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-leaderDone; err != nil {
			t.Errorf("leader Ensure() error = %v", err)
		}
		if got := waiter.calls.Load(); got != 0 {
			t.Errorf("waiter's fetch called %d times, want 0", got)
		}
	})

	t.Run("leader gives up, waiter goes on", func(t *testing.T) {
		c := newCache(t)
		ctx, cancel := context.WithCancel(context.Background())
		fetching := make(chan struct{})
		leaderFetch := func(ctx context.Context) ([]byte, error) {
			close(fetching)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		leaderDone := make(chan error, 1)
		go func() {
			_, err := c.Ensure(ctx, sha, DefaultLimits(), leaderFetch)
			leaderDone <- err
		}()
		<-fetching
		waiter := &fetcher{b: b}
		waiterDone := make(chan error, 1)
		go func() {
			_, err := c.Ensure(context.Background(), sha, DefaultLimits(), waiter.fetch)
			waiterDone <- err
		}()
		time.Sleep(10 * time.Millisecond) // usually the waiter is queued by now; either way works
		cancel()
		if err := <-leaderDone; !errors.Is(err, context.Canceled) {
			t.Errorf("leader Ensure() error = %v, want context.Canceled", err)
		}
		if err := <-waiterDone; err != nil {
			t.Errorf("waiter Ensure() error = %v, want nil", err)
		}
		if got := waiter.calls.Load(); got != 1 {
			t.Errorf("waiter's fetch called %d times, want 1", got)
		}
	})
}

func TestRemove(t *testing.T) {
	b := buildZip(t, file("index.js", "x"), file("lib/a.js", "a"))
	sha := shaHex(b)
	c := newCache(t)
	f := &fetcher{b: b}
	p, err := c.Ensure(context.Background(), sha, DefaultLimits(), f.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(sha); err != nil {
		t.Fatalf("Remove() error = %v", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, Lstat(%s) error = %v, want not exist", p, err)
	}
	if names := entries(t, c.dir); len(names) != 0 {
		t.Errorf("cache holds %q after Remove, want nothing", names)
	}
	if err := c.Remove(sha); err != nil {
		t.Errorf("Remove() of an absent package error = %v, want nil", err)
	}
	if _, err := c.Ensure(context.Background(), sha, DefaultLimits(), f.fetch); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("fetch called %d times, want 2 (unpacked again after Remove)", got)
	}
}

func TestSweep(t *testing.T) {
	b := buildZip(t, file("index.js", "x"))
	sha := shaHex(b)
	c := newCache(t)
	if _, err := c.Ensure(context.Background(), sha, DefaultLimits(), (&fetcher{b: b}).fetch); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: a half-unpacked package and a half-removed one.
	half := filepath.Join(c.dir, tmpPrefix+sha+"-123456")
	if err := os.MkdirAll(filepath.Join(half, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "lib", "a.js"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(c.dir, tmpPrefix+"rm-"+sha+"-XYZ"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Something that is not the cache's own is left alone.
	if err := os.WriteFile(filepath.Join(c.dir, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(); err != nil {
		t.Fatalf("Sweep() error = %v", err)
	}
	if got, want := entries(t, c.dir), []string{sha, "README"}; !slices.Equal(got, sorted(want)) {
		t.Errorf("after Sweep cache holds %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(c.Path(sha), "index.js")); err != nil {
		t.Errorf("Sweep touched a published package: %v", err)
	}
}

func TestSweepSkipsOwnWork(t *testing.T) {
	c := newCache(t)
	busy := tmpPrefix + "busy"
	if err := os.Mkdir(filepath.Join(c.dir, busy), 0o755); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.active[busy] = true
	c.mu.Unlock()
	if err := c.Sweep(); err != nil {
		t.Fatalf("Sweep() error = %v", err)
	}
	if got, want := entries(t, c.dir), []string{busy}; !slices.Equal(got, sorted(want)) {
		t.Errorf("after Sweep cache holds %q, want %q", got, want)
	}
}
