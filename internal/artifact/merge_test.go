package artifact

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// unpackAll unpacks each package into c, as the layers of one function, and returns their
// directories in order.
func unpackAll(t *testing.T, c *Cache, pkgs ...[]byte) []string {
	t.Helper()
	var dirs []string
	for _, b := range pkgs {
		d, err := c.Ensure(context.Background(), shaHex(b), DefaultLimits(), (&fetcher{b: b}).fetch)
		if err != nil {
			t.Fatalf("each layer is valid on its own, but Ensure() error = %v", err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// TestMergeChecksLinksAcrossLayers: links that stay inside each layer but leave the merged tree
// once another layer's link is laid beside them are refused, before anything is written.
func TestMergeChecksLinksAcrossLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]zent
	}{
		{"dot link in a later layer", [][]zent{
			{link("esc", "s/s/../..")},
			{link("s", ".")},
		}},
		{"dot link in an earlier layer", [][]zent{
			{link("s", ".")},
			{link("esc", "s/s/../..")},
		}},
		{"through another layer's directory links", [][]zent{
			{file("python/m.py", "x"), link("python/up", "../x/y/../..")},
			{link("x", "."), link("y", ".")},
		}},
		{"at depth", [][]zent{
			{link("a/b/esc", "s/s/../../../..")},
			{link("a/b/s", "../..")},
		}},
		{"three layers", [][]zent{
			{link("esc", "p/q/../..")},
			{link("p", "r")},
			{link("r", ".")},
		}},
		{"a cycle across layers", [][]zent{
			{link("a", "b/x")},
			{link("b", "a/..")},
		}},
		{"a link replaced by a directory's link", [][]zent{
			{link("lib/esc", "../d/x/../..")},
			{link("d", "lib/.."), file("lib/f", "x")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			var pkgs [][]byte
			for _, l := range tt.layers {
				pkgs = append(pkgs, buildZip(t, l...))
			}
			dirs := unpackAll(t, c, pkgs...)
			before := entries(t, c.dir)
			if err := CheckMerge(dirs); !errors.Is(err, ErrUnsafeSymlink) {
				t.Errorf("CheckMerge() error = %v, want ErrUnsafeSymlink", err)
			}
			got, err := c.Merge(dirs)
			if !errors.Is(err, ErrUnsafeSymlink) || got != "" {
				t.Errorf("Merge() = %q, %v, want ErrUnsafeSymlink", got, err)
			}
			if after := entries(t, c.dir); !slices.Equal(after, before) {
				t.Errorf("after a refused merge the cache holds %q, want %q", after, before)
			}
		})
	}
}

// TestMergeLayout: later layers win, directories merge, links that stay inside the merged tree
// (also across layers) are kept, and every directory is 0755, the root included, so the sandbox
// user can read /opt.
func TestMergeLayout(t *testing.T) {
	old := setUmask(0o077) // Merge must not depend on the umask
	defer setUmask(old)
	c := newCache(t)
	dirs := unpackAll(t, c,
		buildZip(t, file("python/a.py", "a1"), file("python/shared.py", "first"), link("python/lib", "../shared"),
			file("bin/tool", "t")),
		buildZip(t, file("python/b.py", "b"), file("python/shared.py", "second"), file("shared/x.py", "x"),
			link("cur", "python/a.py"), link("bin", "python")),
	)
	if err := CheckMerge(dirs); err != nil {
		t.Fatalf("CheckMerge() error = %v", err)
	}
	m, err := c.Merge(dirs)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"python/a.py": "a1", "python/b.py": "b", "python/shared.py": "second", "python/lib/x.py": "x",
		"cur": "a1", "bin/b.py": "b",
	} {
		if b, err := os.ReadFile(filepath.Join(m, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v, want %q", name, b, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(m, "bin")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("bin: a later layer's link replaces a directory: %v, %v", fi, err)
	}
	err = filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil && fi.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", p, fi.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.Merge(dirs); err != nil || again != m {
		t.Errorf("second Merge() = %q, %v, want %q", again, err, m)
	}
	if filepath.Base(m) != c.MergedName(dirs) {
		t.Errorf("Merge() = %s, want the directory MergedName names (%s)", m, c.MergedName(dirs))
	}
	ents, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Merged != strings.HasPrefix(e.Name, mergedPrefix) {
			t.Errorf("List() entry %+v", e)
		}
		names = append(names, e.Name)
	}
	want := []string{filepath.Base(dirs[0]), filepath.Base(dirs[1]), filepath.Base(m)}
	if !slices.Equal(sorted(names), sorted(want)) {
		t.Errorf("List() = %q, want %q", names, want)
	}
	if err := c.Remove(filepath.Base(m)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := present(m); ok {
		t.Errorf("Remove() left %s", m)
	}
}

// TestMergeRechecksWhatItWrote: the tree read back from disk is checked as well, so a package
// directory altered on disk (or a bug in writing) cannot publish an escaping link.
func TestMergeRechecksWhatItWrote(t *testing.T) {
	c := newCache(t)
	dirs := unpackAll(t, c, buildZip(t, file("a", "1")), buildZip(t, file("b", "2")))
	// What the package format forbids, planted on disk behind the cache's back.
	if err := os.Symlink("/etc", filepath.Join(dirs[1], "abs")); err != nil {
		t.Fatal(err)
	}
	before := entries(t, c.dir)
	if _, err := c.Merge(dirs); !errors.Is(err, ErrUnsafeSymlink) {
		t.Errorf("Merge() with an absolute link error = %v, want ErrUnsafeSymlink", err)
	}
	if after := entries(t, c.dir); !slices.Equal(after, before) {
		t.Errorf("after a refused merge the cache holds %q, want %q", after, before)
	}
}

func TestSweepRemovesLegacyMerged(t *testing.T) {
	c := newCache(t)
	legacy := filepath.Join(c.dir, legacyMergedPrefix+strings.Repeat("a", 32))
	if err := os.MkdirAll(filepath.Join(legacy, "python"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, c.dir); len(names) != 0 {
		t.Errorf("after Sweep the cache holds %q, want nothing", names)
	}
}

func setUmask(mask int) int { return syscall.Umask(mask) }
