package artifact

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
)

// Limits bounds a package. A zero or negative field means the DefaultLimits value, so a zero
// Limits never disables a check.
type Limits struct {
	MaxZipped   int64 // bytes of zip; Lambda's direct-upload limit is 50 MB
	MaxUnzipped int64 // decompressed bytes; Lambda allows 250 MB for function and layers
	MaxFiles    int   // zip entries, and paths they imply, to bound metadata work
}

// DefaultLimits returns Lambda's limits: 50 MB zipped, 250 MB unzipped, 100000 entries.
func DefaultLimits() Limits {
	return Limits{MaxZipped: 52428800, MaxUnzipped: 262144000, MaxFiles: 100000}
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxZipped <= 0 {
		l.MaxZipped = d.MaxZipped
	}
	if l.MaxUnzipped <= 0 {
		l.MaxUnzipped = d.MaxUnzipped
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	return l
}

// Info describes a valid package.
type Info struct {
	Sha256       [32]byte // of the zip bytes
	CodeSha256   string   // base64 (StdEncoding) of Sha256, as Lambda's CodeSha256
	Size         int64    // zipped bytes (Lambda's CodeSize)
	UnzippedSize int64    // decompressed bytes of every entry, symlink targets included
	Files        int      // zip entries, directories and symlinks included
}

// Errors wrapped by Validate and Cache.Ensure; callers branch on them with errors.Is.
var (
	ErrCorrupt          = errors.New("artifact: not a valid zip file")
	ErrZippedTooLarge   = errors.New("artifact: zipped package too large")
	ErrUnzippedTooLarge = errors.New("artifact: unzipped package too large")
	ErrUnsafePath       = errors.New("artifact: entry escapes the package root")
	ErrUnsafeSymlink    = errors.New("artifact: symlink points outside the package")
	ErrTooManyFiles     = errors.New("artifact: too many entries")
)

const (
	maxName       = 4096 // PATH_MAX: a longer name could not be opened under /var/task
	maxComponent  = 255  // NAME_MAX
	maxLinkTarget = 4096 // PATH_MAX
	maxLinkHops   = 40   // Linux's MAXSYMLINKS
	flagEncrypted = 0x1  // general purpose bit 0
)

// Validate checks a whole package without writing anything. See the package comment for the
// rules. It decompresses every entry, counting bytes as they come, and stops as soon as the total
// passes lim.MaxUnzipped. Errors wrap one sentinel and name the entry; on error Info is zero.
func Validate(zipBytes []byte, lim Limits) (Info, error) {
	p, err := inspect(zipBytes, lim)
	if err != nil {
		return Info{}, err
	}
	for _, e := range p.entries {
		if e.kind == kindSymlink {
			continue // read by inspect
		}
		if err := p.copy(e, io.Discard); err != nil {
			return Info{}, err
		}
	}
	p.info.UnzippedSize = p.unzipped
	return p.info, nil
}

type kind uint8

const (
	kindFile kind = iota
	kindDir
	kindSymlink
)

// entry is one zip entry that passed the name and type checks, or one file of an unpacked
// directory read back from disk (then f is nil).
type entry struct {
	f      *zip.File
	name   string // cleaned, slash-separated, relative, never "."
	kind   kind
	perm   fs.FileMode // regular files only
	target string      // symlinks only
	node   *node       // where the entry sits in the tree
	src    string      // read from disk, regular files only: the host file
}

// node is one path in the package: an entry, a directory the entries imply, or the root.
// Walking the tree costs one map lookup per name component, so checking a package is linear in
// the length of its names however deep they go.
type node struct {
	parent   *node // nil for the root
	children map[string]*node
	kind     kind
	e        *entry // nil for the root and implied directories

	// Symlinks only: resolution state and, once resolved, where the link leads.
	state linkState
	to    place
}

type linkState uint8

const (
	unresolved linkState = iota
	resolving
	resolved
)

// place is a position reached while following a symlink: an existing node, plus how many
// components below it lead through names the package does not contain.
type place struct {
	n     *node
	extra int
}

func (n *node) add(name string, k kind, e *entry) *node {
	if n.children == nil {
		n.children = make(map[string]*node)
	}
	c := &node{parent: n, kind: k, e: e}
	n.children[name] = c
	if e != nil {
		e.node = c
	}
	return c
}

// pkg is a package whose structure (names, types, symlink targets) has been checked; its file
// data has not been read yet. It is not safe for concurrent use.
type pkg struct {
	info     Info
	lim      Limits
	root     *node
	entries  []*entry // in zip order, without entries naming the root
	unzipped int64    // decompressed bytes read so far
	buf      []byte   // reused by every copy
}

// inspect checks everything but the file data: sizes, names, types, duplicates, parents and
// symlinks. It reads symlink targets, counting them against MaxUnzipped.
func inspect(b []byte, lim Limits) (*pkg, error) {
	lim = lim.orDefault()
	if int64(len(b)) > lim.MaxZipped {
		return nil, fmt.Errorf("zipped size %d bytes exceeds the limit of %d: %w",
			len(b), lim.MaxZipped, ErrZippedTooLarge)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	// With GODEBUG=zipinsecurepath=0 the reader comes with ErrInsecurePath; the name checks
	// below are stricter and give a precise reason, so carry on.
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if len(zr.File) > lim.MaxFiles {
		return nil, fmt.Errorf("%d entries exceed the limit of %d: %w",
			len(zr.File), lim.MaxFiles, ErrTooManyFiles)
	}
	sum := sha256.Sum256(b)
	p := &pkg{
		info: Info{
			Sha256:     sum,
			CodeSha256: base64.StdEncoding.EncodeToString(sum[:]),
			Size:       int64(len(b)),
			Files:      len(zr.File),
		},
		lim:     lim,
		root:    &node{kind: kindDir},
		entries: make([]*entry, 0, len(zr.File)),
		buf:     make([]byte, 32<<10),
	}
	nodes := 0
	for _, f := range zr.File {
		comps, isDir, err := splitName(f.Name)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %s: %w", f.Name, err, ErrUnsafePath)
		}
		if f.Flags&flagEncrypted != 0 {
			return nil, fmt.Errorf("entry %q: encrypted entries are not supported: %w",
				f.Name, ErrCorrupt)
		}
		k, err := entryKind(f, isDir)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %s: %w", f.Name, err, ErrUnsafePath)
		}
		if len(comps) == 0 {
			if k == kindDir {
				continue
			}
			return nil, fmt.Errorf("entry %q: names the package root: %w", f.Name, ErrUnsafePath)
		}
		e := &entry{f: f, name: strings.Join(comps, "/"), kind: k}
		if k == kindFile {
			e.perm = filePerm(f, e.name)
		}

		// Every parent must be a directory, explicit or implied; never a file or a symlink.
		n := p.root
		for i, c := range comps[:len(comps)-1] {
			child := n.children[c]
			switch {
			case child == nil:
				child = n.add(c, kindDir, nil)
				nodes++
			case child.kind == kindSymlink:
				return nil, fmt.Errorf("entry %q: path goes through symlink %q: %w",
					f.Name, strings.Join(comps[:i+1], "/"), ErrUnsafePath)
			case child.kind == kindFile:
				return nil, fmt.Errorf("entry %q: parent %q is a regular file: %w",
					f.Name, strings.Join(comps[:i+1], "/"), ErrCorrupt)
			}
			n = child
		}
		last := comps[len(comps)-1]
		switch old := n.children[last]; {
		case old == nil:
			n.add(last, k, e)
			nodes++
		case old.kind == kindDir && k == kindDir:
			if old.e == nil { // an implied directory listed after its contents
				old.e, e.node = e, old
			}
		case old.kind == kindDir && old.e == nil && k == kindSymlink:
			return nil, fmt.Errorf("entry %q: symlink has entries below it: %w", f.Name, ErrUnsafePath)
		case old.kind == kindDir && old.e == nil:
			return nil, fmt.Errorf("entry %q: regular file has entries below it: %w", f.Name, ErrCorrupt)
		default:
			return nil, fmt.Errorf("entry %q: duplicate entry for %q: %w", f.Name, e.name, ErrCorrupt)
		}
		if nodes > lim.MaxFiles {
			return nil, fmt.Errorf("entries and the directories they imply exceed the limit of %d: %w",
				lim.MaxFiles, ErrTooManyFiles)
		}
		p.entries = append(p.entries, e)
	}

	for _, e := range p.entries {
		if e.kind != kindSymlink {
			continue
		}
		var t linkTarget
		if err := p.copy(e, &t); err != nil {
			return nil, err
		}
		e.target = string(t.b)
		if err := checkTarget(e.target); err != nil {
			return nil, fmt.Errorf("symlink %q -> %q: %s: %w", e.f.Name, e.target, err, ErrUnsafeSymlink)
		}
	}
	for _, e := range p.entries {
		if e.kind != kindSymlink {
			continue
		}
		if _, err := resolve(e.node, 0); err != nil {
			return nil, fmt.Errorf("entry %q: %v: %w", e.f.Name, err, ErrUnsafeSymlink)
		}
	}
	return p, nil
}

// copy decompresses e into w, counting against MaxUnzipped and stopping one byte past it. Errors
// from w are returned wrapped as they are; everything else from reading is ErrCorrupt.
func (p *pkg) copy(e *entry, w io.Writer) error {
	rc, err := e.f.Open()
	if err != nil {
		return fmt.Errorf("entry %q: %s: %w", e.f.Name, readProblem(e, err), ErrCorrupt)
	}
	defer rc.Close()
	n := p.lim.MaxUnzipped - p.unzipped
	if n < math.MaxInt64 {
		n++ // read one byte past the limit to tell "exactly at" from "over"
	}
	// errWriter hides io.ReaderFrom, so CopyBuffer uses p.buf and write errors stay apart.
	ew := errWriter{w: w}
	written, err := io.CopyBuffer(&ew, io.LimitReader(rc, n), p.buf)
	p.unzipped += written
	switch {
	case ew.err != nil:
		return fmt.Errorf("entry %q: %w", e.f.Name, ew.err)
	case err != nil:
		return fmt.Errorf("entry %q: %s: %w", e.f.Name, readProblem(e, err), ErrCorrupt)
	case p.unzipped > p.lim.MaxUnzipped:
		return fmt.Errorf("entry %q: unzipped size exceeds the limit of %d bytes: %w",
			e.f.Name, p.lim.MaxUnzipped, ErrUnzippedTooLarge)
	}
	return nil
}

// readProblem says why archive/zip could not read e, in words for the package's author.
func readProblem(e *entry, err error) string {
	switch {
	case errors.Is(err, zip.ErrAlgorithm):
		return fmt.Sprintf("unsupported compression method %d", e.f.Method)
	case errors.Is(err, zip.ErrChecksum):
		return "checksum mismatch"
	case errors.Is(err, zip.ErrFormat) && e.kind == kindDir:
		return "directory entry has data"
	case errors.Is(err, zip.ErrFormat):
		return "more data than its header declares, or a bad local header"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "less data than its header declares"
	}
	return err.Error()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

var errTargetTooLong = fmt.Errorf("target longer than %d bytes: %w", maxLinkTarget, ErrUnsafeSymlink)

// linkTarget collects a symlink's target, refusing more than maxLinkTarget bytes.
type linkTarget struct{ b []byte }

func (t *linkTarget) Write(b []byte) (int, error) {
	if len(t.b)+len(b) > maxLinkTarget {
		return 0, errTargetTooLong
	}
	t.b = append(t.b, b...)
	return len(b), nil
}

// splitName checks a zip entry name and returns its components, without "." and empty ones
// (none for the root), and whether a trailing slash marks it as a directory. The error is the
// reason the name is unsafe.
func splitName(name string) (comps []string, isDir bool, err error) {
	switch {
	case name == "":
		return nil, false, errors.New("empty name")
	case len(name) > maxName:
		return nil, false, fmt.Errorf("name longer than %d bytes", maxName)
	case strings.IndexByte(name, 0) >= 0:
		return nil, false, errors.New("name contains a NUL byte")
	case strings.IndexByte(name, '\\') >= 0:
		return nil, false, errors.New("name contains a backslash")
	case name[0] == '/':
		return nil, false, errors.New("absolute path")
	case len(name) >= 2 && name[1] == ':' && isLetter(name[0]):
		return nil, false, errors.New("Windows drive letter")
	}
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "..":
			return nil, false, errors.New(`".." component`)
		case c == "" || c == ".":
			continue
		case len(c) > maxComponent:
			return nil, false, fmt.Errorf("name component longer than %d bytes", maxComponent)
		}
		comps = append(comps, c)
	}
	return comps, strings.HasSuffix(name, "/"), nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// hasUnixMode reports whether the entry carries Unix mode bits: made on Unix or macOS, with
// the upper half of the external attributes set.
func hasUnixMode(f *zip.File) bool {
	const creatorUnix, creatorMacOSX = 3, 19
	creator := f.CreatorVersion >> 8
	return (creator == creatorUnix || creator == creatorMacOSX) && f.ExternalAttrs>>16 != 0
}

func entryKind(f *zip.File, isDir bool) (kind, error) {
	m := f.Mode()
	switch {
	case isDir || m.IsDir():
		return kindDir, nil
	case !hasUnixMode(f):
		return kindFile, nil // MS-DOS attributes know only files and directories
	case m&fs.ModeSymlink != 0:
		return kindSymlink, nil
	case m.IsRegular():
		return kindFile, nil
	}
	return 0, fmt.Errorf("unsupported file type %v", m.Type())
}

func filePerm(f *zip.File, name string) fs.FileMode {
	if hasUnixMode(f) {
		if f.Mode().Perm()&0o111 != 0 {
			return 0o755
		}
		return 0o644
	}
	if name == "bootstrap" {
		return 0o755 // the custom runtime's entry point, zipped on Windows
	}
	return 0o644
}

// checkTarget checks a symlink target's syntax; resolve checks where it leads.
func checkTarget(t string) error {
	switch {
	case t == "":
		return errors.New("empty target")
	case strings.IndexByte(t, 0) >= 0:
		return errors.New("target contains a NUL byte")
	case strings.IndexByte(t, '\\') >= 0:
		return errors.New("target contains a backslash")
	case t[0] == '/':
		return errors.New("absolute target")
	}
	return nil
}

// resolve follows the symlink at link as the kernel would, component by component from the
// link's directory, following the package's other symlinks on the way (a ".." after a link
// applies to where the link leads, not to the link's name). It fails if the walk leaves the root,
// loops, or nests more than maxLinkHops links. Each link is resolved once and remembered, so a
// package's links cost time linear in their targets' lengths.
func resolve(link *node, depth int) (place, error) {
	switch link.state {
	case resolved:
		return link.to, nil
	case resolving:
		return place{}, fmt.Errorf("symlink %q is part of a cycle", link.e.name)
	}
	if depth >= maxLinkHops {
		return place{}, errors.New("too many levels of symbolic links")
	}
	link.state = resolving
	cur := place{n: link.parent}
	for c := range strings.SplitSeq(link.e.target, "/") {
		switch {
		case c == "" || c == ".":
		case c == "..":
			switch {
			case cur.extra > 0:
				cur.extra--
			case cur.n.parent == nil:
				return place{}, fmt.Errorf("symlink %q -> %q leaves the package root",
					link.e.name, link.e.target)
			default:
				cur.n = cur.n.parent
			}
		case cur.extra > 0:
			cur.extra++
		default:
			switch child := cur.n.children[c]; {
			case child == nil:
				cur.extra = 1
			case child.kind == kindSymlink:
				to, err := resolve(child, depth+1)
				if err != nil {
					return place{}, err
				}
				cur = to
			default:
				cur.n = child
			}
		}
	}
	link.state, link.to = resolved, cur
	return cur, nil
}
