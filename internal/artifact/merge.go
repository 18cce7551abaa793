package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// mergedPrefix starts the name of every merged directory. Directories named "merged-" were made
// by an older Flint (a 0700 root the sandbox user could not read, symlinks never checked across
// layers); Sweep removes them, so none is ever served again.
const (
	mergedPrefix       = "layers-"
	legacyMergedPrefix = "merged-"
)

// Merge returns one directory holding the unpacked packages dirs laid over each other in order
// (a later one wins on the same path, two directories merge), as Lambda extracts a function's
// layers into /opt. One package is its own directory; several are merged once per combination,
// with hard links (no copies), into a directory named by the combination and published with an
// atomic rename. Directories in it are 0755 whatever the umask, like a package's.
//
// Each package's symlinks were checked on their own when it was unpacked, but laying packages
// over each other changes where a link leads ("esc" -> "s/s/../.." stays inside one package
// until another adds "s" -> "."). So the combination is checked as CheckMerge does before
// anything is written, and the written tree is read back and checked again before it is
// published; a failure wraps ErrUnsafeSymlink and leaves nothing behind.
func (c *Cache) Merge(dirs []string) (string, error) {
	switch len(dirs) {
	case 0:
		return "", nil
	case 1:
		return dirs[0], nil
	}
	final := filepath.Join(c.dir, c.MergedName(dirs))
	if ok, err := present(final); err != nil || ok {
		if err != nil {
			return "", fmt.Errorf("merge layers: %w", err)
		}
		return final, nil
	}
	t, err := overlayTree(dirs)
	if err != nil {
		return "", fmt.Errorf("merge layers: %w", err)
	}

	c.mu.Lock()
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix+"merge-")
	if err == nil {
		c.active[filepath.Base(tmp)] = true
	}
	c.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("merge layers: %w", err)
	}
	defer func() {
		_ = os.RemoveAll(tmp) // gone after a successful rename
		c.mu.Lock()
		delete(c.active, filepath.Base(tmp))
		c.mu.Unlock()
	}()
	if err := writeTree(tmp, t.root); err != nil {
		return "", fmt.Errorf("merge layers: %w", err)
	}
	// Defence in depth: what is on disk, not what was meant to be, is what gets mounted.
	if _, err := overlayTree([]string{tmp}); err != nil {
		return "", fmt.Errorf("merge layers: written tree: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if ok, _ := present(final); ok {
			return final, nil // merged concurrently
		}
		return "", fmt.Errorf("merge layers: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		return "", fmt.Errorf("merge layers: %w", err)
	}
	return final, nil
}

// MergedName is the name, in the cache directory, of the directory Merge makes for dirs (two or
// more). Callers use it to tell which merged directories are still referenced.
func (c *Cache) MergedName(dirs []string) string {
	h := sha256.Sum256([]byte(strings.Join(dirs, "\x00")))
	return mergedPrefix + hex.EncodeToString(h[:16])
}

// CheckMerge checks the tree that Merge would make of dirs, without writing anything: every
// symlink in it must resolve inside it, followed component by component through the tree's own
// links as the kernel would (a link from one package may pass through another's). An error wraps
// ErrUnsafeSymlink (or ErrUnsafePath for a file that is neither a regular file, a directory nor
// a symlink) and names the link.
func CheckMerge(dirs []string) error {
	if len(dirs) < 2 {
		return nil // a package on its own was checked when it was unpacked
	}
	_, err := overlayTree(dirs)
	return err
}

// tree is unpacked directories read back from disk and laid over each other.
type tree struct {
	root  *node
	nodes int
}

// overlayTree reads dirs from disk, without following any symlink, lays them over each other as
// Merge does and checks every symlink of the result.
func overlayTree(dirs []string) (*tree, error) {
	t := &tree{root: &node{kind: kindDir}}
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", d)
		}
		if err := t.add(d, "", t.root); err != nil {
			return nil, err
		}
	}
	if err := checkLinks(t.root); err != nil {
		return nil, err
	}
	return t, nil
}

// add lays the host directory dir over n: an entry replaces what n holds under its name, except
// that a directory over a directory merges into it.
func (t *tree) add(dir, rel string, n *node) error {
	ents, err := os.ReadDir(dir) // lstat types: links are reported, never followed
	if err != nil {
		return err
	}
	for _, de := range ents {
		name := de.Name()
		path := filepath.Join(dir, name)
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		if t.nodes++; t.nodes > maxMergedNodes {
			return fmt.Errorf("more than %d paths: %w", maxMergedNodes, ErrTooManyFiles)
		}
		switch typ := de.Type(); {
		case typ.IsDir():
			child := n.children[name]
			if child == nil || child.kind != kindDir {
				child = n.add(name, kindDir, &entry{name: r, kind: kindDir})
			}
			if err := t.add(path, r, child); err != nil {
				return err
			}
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			n.add(name, kindSymlink, &entry{name: r, kind: kindSymlink, target: target})
		case typ.IsRegular():
			n.add(name, kindFile, &entry{name: r, kind: kindFile, src: path})
		default:
			return fmt.Errorf("%q: unsupported file type %v: %w", r, typ, ErrUnsafePath)
		}
	}
	return nil
}

// maxMergedNodes bounds the paths of a merged tree: Lambda's five layers at DefaultLimits'
// MaxFiles each, directories included.
const maxMergedNodes = 5 * 100000

// checkLinks resolves every symlink below n within the tree n belongs to.
func checkLinks(n *node) error {
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		switch c := n.children[name]; c.kind {
		case kindDir:
			if err := checkLinks(c); err != nil {
				return err
			}
		case kindSymlink:
			if err := checkTarget(c.e.target); err != nil {
				return fmt.Errorf("symlink %q -> %q: %s: %w", c.e.name, c.e.target, err, ErrUnsafeSymlink)
			}
			if _, err := resolve(c, 0); err != nil {
				return fmt.Errorf("%v: %w", err, ErrUnsafeSymlink)
			}
		}
	}
	return nil
}

// writeTree makes n's contents in the empty directory dir: directories (0755, whatever the
// umask), hard links to the packages' files, and symlinks last in each directory. Every
// directory is made here, in a directory only this process writes, and no symlink is ever a
// parent of anything written, so nothing is written through a link; each operation goes through
// an os.Root all the same. Directories are fsynced, so the rename that publishes dir cannot
// outlive their entries in a power failure.
func writeTree(dir string, n *node) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	names := slices.Sorted(maps.Keys(n.children))
	for _, name := range names {
		switch c := n.children[name]; c.kind {
		case kindDir:
			if err := r.Mkdir(name, 0o755); err != nil {
				return err
			}
			if err := writeTree(filepath.Join(dir, name), c); err != nil {
				return err
			}
		case kindFile:
			// link(2) does not follow newpath; its parent is dir, made above by this function.
			if err := os.Link(c.e.src, filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	for _, name := range names {
		if c := n.children[name]; c.kind == kindSymlink {
			if err := r.Symlink(c.e.target, name); err != nil {
				return err
			}
		}
	}
	return finishDir(r)
}

// isMergedName reports whether name is a directory Merge publishes.
func isMergedName(name string) bool {
	h, ok := strings.CutPrefix(name, mergedPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

var errNotCacheEntry = errors.New("artifact: not a package hash or a merged directory name")
