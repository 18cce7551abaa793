package build

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flint-run/flint/internal/artifact"
)

// treeEntry is one path writeTree creates: a name ending in "/" is a directory, content
// "->target" a symlink, anything else a file with that content. Modes are set explicitly
// (umask aside).
type treeEntry struct {
	name    string
	mode    fs.FileMode
	content string
}

func writeTree(t *testing.T, dir string, entries []treeEntry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(e.name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(e.content, "->"):
			if err := os.Symlink(strings.TrimPrefix(e.content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(e.content), e.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var packageTree = []treeEntry{
	{name: "bootstrap", mode: 0o755, content: "#!/bin/sh\necho hi\n"},
	{name: "lib/", mode: 0o750},
	{name: "lib/a.txt", mode: 0o644, content: "a"},
	{name: "lib/nested/b.txt", mode: 0o600, content: strings.Repeat("b", 10000)},
	{name: "lib/run", mode: 0o700, content: "#!/bin/sh\n"},
	{name: "link", content: "->lib/a.txt"},
	{name: "libs", content: "->lib"},
	{name: "empty/", mode: 0o700},
	{name: ".git/config", mode: 0o644, content: "[core]"},
	{name: "sub/.git", mode: 0o644, content: "gitdir: ../.git/modules/sub"},
	{name: "sub/x.py", mode: 0o644, content: "x = 1\n"},
	{name: ".env", mode: 0o600, content: "A=1"},
}

// zipEntry is what a test checks of each zip entry.
type zipEntry struct {
	Name    string
	Mode    fs.FileMode
	Method  uint16
	Content string
}

// readZip lists a zip's entries and checks what every entry of Flint's zipper has in common:
// the DOS time of 1980-01-01 00:00:00, Unix modes, no extra fields.
func readZip(t *testing.T, b []byte) []zipEntry {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("read zip: %v", err)
	}
	var got []zipEntry
	for _, f := range zr.File {
		if f.ModifiedDate != dosDate1980 || f.ModifiedTime != dosTime0 || !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: modified %v (DOS %#x %#x), want 1980-01-01 00:00:00", f.Name, f.Modified, f.ModifiedDate, f.ModifiedTime)
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s has extra fields %x", f.Name, f.Extra)
		}
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: made by %d, want 3 (Unix)", f.Name, f.CreatorVersion>>8)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		got = append(got, zipEntry{Name: f.Name, Mode: f.Mode(), Method: f.Method, Content: string(content)})
	}
	return got
}

// TestZipDir pins the one package format: entries sorted by name; directories kept, empty
// ones too; permissions normalised to 0644/0755 by the execute bit, directories 0755; symlinks
// kept as links, to files or directories; .git left out, nothing else.
func TestZipDir(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, packageTree)

	b, unzipped, err := ZipDir(dir, Options{})
	if err != nil {
		t.Fatalf("ZipDir: %v", err)
	}
	got := readZip(t, b)
	file := func(name string, mode fs.FileMode, content string) zipEntry {
		return zipEntry{Name: name, Mode: mode, Method: zip.Deflate, Content: content}
	}
	dirEnt := func(name string) zipEntry { return zipEntry{Name: name, Mode: fs.ModeDir | 0o755, Method: zip.Store} }
	link := func(name, target string) zipEntry {
		return zipEntry{Name: name, Mode: fs.ModeSymlink | 0o777, Method: zip.Store, Content: target}
	}
	want := []zipEntry{
		file(".env", 0o644, "A=1"),
		file("bootstrap", 0o755, "#!/bin/sh\necho hi\n"),
		dirEnt("empty/"),
		dirEnt("lib/"),
		file("lib/a.txt", 0o644, "a"),
		dirEnt("lib/nested/"),
		file("lib/nested/b.txt", 0o644, strings.Repeat("b", 10000)),
		file("lib/run", 0o755, "#!/bin/sh\n"),
		link("libs", "lib"),
		link("link", "lib/a.txt"),
		dirEnt("sub/"),
		file("sub/x.py", 0o644, "x = 1\n"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zip entries (-want +got):\n%s", diff)
	}
	if want := int64(3 + 18 + 1 + 10000 + 10 + 3 + 9 + 6); unzipped != want {
		t.Errorf("unzipped = %d, want %d (files and link targets)", unzipped, want)
	}
	// What the zipper makes, the server takes, by its own rules.
	if _, err := artifact.Validate(b, artifact.DefaultLimits()); err != nil {
		t.Errorf("artifact.Validate: %v", err)
	}
}

// TestZipDirDeterministic: the bytes depend only on names, contents, links and execute bits;
// not on the order files were written, their times, owners' other permission bits or umask.
func TestZipDirDeterministic(t *testing.T) {
	first := t.TempDir()
	writeTree(t, first, packageTree)
	// The same tree written in reverse order, later, with other permissions.
	second := t.TempDir()
	var reversed []treeEntry
	for i := len(packageTree) - 1; i >= 0; i-- {
		e := packageTree[i]
		switch {
		case strings.HasSuffix(e.name, "/"):
			e.mode = 0o777
		case e.mode&0o111 != 0:
			e.mode = 0o711
		case e.mode != 0:
			e.mode = 0o664
		}
		reversed = append(reversed, e)
	}
	writeTree(t, second, reversed)
	later := time.Now().Add(time.Hour)
	for _, name := range []string{"bootstrap", "lib", "empty"} {
		if err := os.Chtimes(filepath.Join(second, name), later, later); err != nil {
			t.Fatal(err)
		}
	}

	zips := map[string][]byte{}
	for _, run := range []struct{ name, dir string }{
		{"first", first}, {"first again", first}, {"second", second},
	} {
		b, _, err := ZipDir(run.dir, Options{})
		if err != nil {
			t.Fatalf("%s: ZipDir: %v", run.name, err)
		}
		zips[run.name] = b
	}
	for _, name := range []string{"first again", "second"} {
		if got, want := Sha256(zips[name]), Sha256(zips["first"]); got != want {
			t.Errorf("CodeSha256 of %s zip = %s, want %s (the first zip's)", name, got, want)
		}
	}
}

func TestZipDirRejectsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []treeEntry{{name: "a", mode: 0o644, content: "a"}})
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Skipf("cannot create a unix socket here: %v", err)
	}
	defer l.Close()
	if _, _, err := ZipDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), "sock: cannot package") {
		t.Errorf("ZipDir of a tree with a socket: got %v, want an error naming sock", err)
	}
}

// TestZipDirRefusesWhatTheServerRefuses: a symlink that is absolute, leads out of the
// directory (also through another link) or loops is an error at zip time naming the link,
// never a package the server turns down after the upload.
func TestZipDirRefusesWhatTheServerRefuses(t *testing.T) {
	tests := []struct {
		name string
		tree []treeEntry
		link string // the link the error must name
	}{
		{"absolute", []treeEntry{{name: "passwd", content: "->/etc/passwd"}}, `"passwd"`},
		{"absolute into the package", []treeEntry{{name: "a", mode: 0o644, content: "a"}, {name: "b", content: "->DIR/a"}}, `"b"`},
		{"parent", []treeEntry{{name: "up", content: "->.."}}, `"up"`},
		{"out and back in", []treeEntry{{name: "lib/x", mode: 0o644}, {name: "lib/l", content: "->../../pkg/lib/x"}}, `"lib/l"`},
		{"through another link", []treeEntry{{name: "a/d", content: "->.."}, {name: "e", content: "->a/d/../x"}}, `"e"`},
		{"cycle", []treeEntry{{name: "a", content: "->b"}, {name: "b", content: "->a"}}, "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pkg")
			var tree []treeEntry
			for _, e := range append(tt.tree, treeEntry{name: "bootstrap", mode: 0o755, content: "x"}) {
				e.content = strings.Replace(e.content, "->DIR", "->"+dir, 1)
				tree = append(tree, e)
			}
			writeTree(t, dir, tree)
			b, _, err := ZipDir(dir, Options{})
			if !errors.Is(err, artifact.ErrUnsafeSymlink) || !strings.Contains(err.Error(), tt.link) || !strings.Contains(err.Error(), dir) {
				t.Errorf("ZipDir = %d bytes, %v; want an error wrapping ErrUnsafeSymlink naming %s and %s", len(b), err, tt.link, dir)
			}
		})
	}

	// Links that stay inside are fine, dangling ones included (Lambda takes them too).
	dir := t.TempDir()
	writeTree(t, dir, []treeEntry{{name: "a/b/c", mode: 0o644}, {name: "a/up", content: "->../a/b/c"},
		{name: "a/b/down", content: "->../../a/b"}, {name: "later", content: "->not/yet/here"}})
	if _, _, err := ZipDir(dir, Options{}); err != nil {
		t.Errorf("links inside the package: %v", err)
	}
}

// TestZipDirLimits: Lambda's limits hold for ready packages as for builds.
func TestZipDirLimits(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []treeEntry{{name: "data", mode: 0o644, content: strings.Repeat("x", 4096)}})
	for _, tt := range []struct {
		opts Options
		what string
	}{{Options{MaxUnzipped: 1024}, "unzipped"}, {Options{MaxZipped: 64}, "zipped"}} {
		_, _, err := ZipDir(dir, tt.opts)
		var le *LimitError
		if !errors.As(err, &le) || le.What != tt.what {
			t.Errorf("ZipDir with %+v: got %v, want a %s LimitError", tt.opts, err, tt.what)
		}
	}
}

func ExampleZipDir() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o700)
	_ = os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
	_ = os.Symlink("bootstrap", filepath.Join(dir, "run"))
	b, _, _ := ZipDir(dir, Options{})
	zr, _ := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	for _, f := range zr.File {
		fmt.Println(f.Name, f.Mode(), f.Modified.Format(time.DateTime))
	}
	// Output:
	// bootstrap -rwxr-xr-x 1980-01-01 00:00:00
	// run Lrwxrwxrwx 1980-01-01 00:00:00
	// tmp/ drwxr-xr-x 1980-01-01 00:00:00
}
