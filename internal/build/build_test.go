package build

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// entries lists a zip's entries as "name mode".
func entries(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		if len(f.Extra) != 0 {
			t.Errorf("%s has extra fields %x", f.Name, f.Extra)
		}
		if m := f.Modified; !m.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) && !(m.Year() == 1980 && m.YearDay() == 1 && m.Hour() == 0) {
			t.Errorf("%s modified %v, want 1980-01-01", f.Name, m)
		}
		got = append(got, f.Name+" "+f.Mode().String())
	}
	if !sort.StringsAreSorted(got) {
		t.Errorf("entries not sorted: %v", got)
	}
	return got
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExamplesReproducible builds the repository's examples twice each: the bytes are identical.
func TestExamplesReproducible(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tests := []struct {
		dir                    string
		lang, runtime, handler string
		want                   []string
	}{
		{"go-echo", Go, GoRuntime, "bootstrap", []string{"bootstrap -rwxr-xr-x"}},
		{"python-hello", Python, PythonRuntime, "app.handler", []string{"README.md -rw-r--r--", "app.py -rw-r--r--"}},
		{"node-hello", Node, NodeRuntime, "index.handler", []string{"index.mjs -rw-r--r--"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join("..", "..", "examples", tt.dir)
			first, err := Build(ctx, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Touch the sources: timestamps must not matter.
			now := time.Now()
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					_ = os.Chtimes(p, now, now)
				}
				return nil
			})
			second, err := Build(ctx, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.Zip, second.Zip) || first.CodeSha256 != second.CodeSha256 {
				t.Errorf("two builds differ: %s (%d bytes) and %s (%d bytes)", first.CodeSha256, first.Size, second.CodeSha256, second.Size)
			}
			if first.Language != tt.lang || first.Runtime != tt.runtime || first.Handler != tt.handler {
				t.Errorf("got %s %s %s, want %s %s %s", first.Language, first.Runtime, first.Handler, tt.lang, tt.runtime, tt.handler)
			}
			if diff := cmp.Diff(tt.want, entries(t, first.Zip)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if first.Size != int64(len(first.Zip)) || first.Unzipped <= 0 {
				t.Errorf("Size %d Unzipped %d for a %d-byte zip", first.Size, first.Unzipped, len(first.Zip))
			}
		})
	}
}

// makeWheel writes a minimal pure-Python wheel for package name into dir.
func makeWheel(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	di := name + "-1.0.dist-info/"
	files := []struct{ name, body string }{
		{name + "/__init__.py", "VALUE = 42\n"},
		{name + "/tests/test_it.py", "def test(): pass\n"},
		{di + "METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"},
		{di + "WHEEL", "Wheel-Version: 1.0\nGenerator: flint-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{di + "RECORD", name + "/__init__.py,,\n" + name + "/tests/test_it.py,,\n" + di + "METADATA,,\n" + di + "WHEEL,,\n" + di + "RECORD,,\n"},
	}
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-1.0-py3-none-any.whl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPythonWheelsAndPruning installs a requirement from a local wheel directory with the host's
// pip and prunes byte code, tests and metadata.
func TestPythonWheelsAndPruning(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app.py":                          "import tinydep\ndef handler(e, c):\n    return tinydep.VALUE\n",
		"requirements.txt":                "# deps\ntinydep==1.0\n",
		"lib/util.py":                     "X = 1\n",
		"__pycache__/app.cpython-311.pyc": "junk",
		"lib/util.pyc":                    "junk",
		"tests/test_app.py":               "def test(): pass\n",
		"old.egg-info/PKG-INFO":           "x",
	})
	makeWheel(t, filepath.Join(dir, "wheels"), "tinydep")
	var first []byte
	for i := range 2 {
		res, err := Build(ctx, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"app.py -rw-r--r--", "lib/ drwxr-xr-x", "lib/util.py -rw-r--r--", "requirements.txt -rw-r--r--",
			"tinydep/ drwxr-xr-x", "tinydep/__init__.py -rw-r--r--"}
		if diff := cmp.Diff(want, entries(t, res.Zip)); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
		if i == 0 {
			first = res.Zip
		} else if !bytes.Equal(first, res.Zip) {
			t.Error("two builds differ")
		}
	}
	// The source directory is untouched.
	if _, err := os.Stat(filepath.Join(dir, "tinydep")); err == nil {
		t.Error("build installed into the source directory")
	}

	// A requirement with no wheel fails, naming it.
	writeFiles(t, dir, map[string]string{"requirements.txt": "tinydep==1.0\nmissingdep>=2\n"})
	_, err := Build(ctx, dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "tinydep, missingdep") || !strings.Contains(err.Error(), "wheels") {
		t.Errorf("missing wheel: got %v", err)
	}
}

// TestPythonNoIndex: with no wheels/ and no reachable index, the error names the packages.
func TestPythonNoIndex(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.py": "def handler(e, c): pass\n", "requirements.txt": "surely-not-a-package-xyz==9.9\n"})
	_, err := Build(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "surely-not-a-package-xyz") {
		t.Errorf("got %v, want an error naming the package", err)
	}
	// An empty requirements.txt runs no pip at all.
	writeFiles(t, dir, map[string]string{"requirements.txt": "\n# nothing\n"})
	if _, err := Build(context.Background(), dir, Options{Python: "/nonexistent/python"}); err != nil {
		t.Errorf("empty requirements: %v", err)
	}
}

func TestNodePruning(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.js":                       "exports.handler = async () => 1\n",
		"README.md":                      "docs",
		"tests/a.test.js":                "",
		"node_modules/left-pad/index.js": "stale", // replaced by npm in a real build; copied out here
		"lib/x.js":                       "",
	})
	res, err := Build(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"index.js -rw-r--r--", "lib/ drwxr-xr-x", "lib/x.js -rw-r--r--"}
	if diff := cmp.Diff(want, entries(t, res.Zip)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if res.Handler != "index.handler" || res.Runtime != NodeRuntime {
		t.Errorf("handler %q runtime %q", res.Handler, res.Runtime)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, compresses well
	writeFiles(t, dir, map[string]string{"app.py": "def handler(e, c): pass\n", "data.txt": big})
	tests := []struct {
		name string
		opts Options
		what string
	}{
		{"unzipped", Options{MaxUnzipped: 512 << 10}, "unzipped"},
		{"zipped", Options{MaxZipped: 1 << 10}, "zipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(context.Background(), dir, tt.opts)
			var le *LimitError
			if !errors.As(err, &le) || le.What != tt.what {
				t.Fatalf("got %v, want a %s LimitError", err, tt.what)
			}
			if !strings.Contains(err.Error(), "over Lambda's "+tt.what+" limit") {
				t.Errorf("message %q", err)
			}
		})
	}
	if _, err := Build(context.Background(), dir, Options{}); err != nil {
		t.Errorf("within Lambda's limits: %v", err)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		files  map[string]string
		want   string
		source bool
	}{
		{map[string]string{"main.go": "package main\n"}, Go, true},
		{map[string]string{"go.mod": "module x\n"}, Go, true},
		{map[string]string{"requirements.txt": ""}, Python, true},
		{map[string]string{"package.json": "{}"}, Node, true},
		{map[string]string{"bootstrap": "#!/bin/sh\n", "x.py": ""}, Python, false},
		{map[string]string{"data.bin": ""}, "", false},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		writeFiles(t, dir, tt.files)
		got, err := Detect(dir)
		if got != tt.want || (tt.want == "") != errors.Is(err, ErrUnknownLanguage) {
			t.Errorf("Detect(%v) = %q, %v; want %q", tt.files, got, err, tt.want)
		}
		if IsSource(dir) != tt.source {
			t.Errorf("IsSource(%v) = %v, want %v", tt.files, !tt.source, tt.source)
		}
	}
}

// TestFindHandlers reads handlers the way the runtimes reach them: a top-level Python function
// or a Node export, never a substring (main.py defining lambda_handler once gave main.handler,
// which failed at invoke).
func TestFindHandlers(t *testing.T) {
	tests := []struct {
		name      string
		lang      string
		files     map[string]string
		want      string
		wantFound []string
	}{
		{"python lambda_handler in main.py", Python,
			map[string]string{"main.py": "import json\n\ndef lambda_handler(event, context):\n    return handler_count\n"},
			"main.lambda_handler", []string{"main.lambda_handler"}},
		{"python helper beside handler", Python,
			map[string]string{"app.py": "def _helper(x):\n    return x\n\ndef handler(event, context):\n    return _helper(event)\n"},
			"app.handler", []string{"app._helper", "app.handler"}},
		{"python nested and commented defs do not count", Python,
			map[string]string{"app.py": "# def handler(event, context):\nclass C:\n    def handler(self):\n        pass\n\nasync def run(event, context):\n    pass\n"},
			"app.run", []string{"app.run"}},
		{"python assignment", Python,
			map[string]string{"app.py": "from mangum import Mangum\nhandler = Mangum(app)\n"},
			"app.handler", []string{"app.handler"}},
		{"python two candidates", Python,
			map[string]string{"app.py": "def go(event, context):\n    pass\n", "main.py": "def start(event, context):\n    pass\n"},
			"", []string{"app.go", "main.start"}},
		{"python two handlers", Python,
			map[string]string{"app.py": "def handler(event, context):\n    pass\n", "main.py": "def lambda_handler(event, context):\n    pass\n"},
			"", []string{"app.handler", "main.lambda_handler"}},
		{"python none", Python, map[string]string{"util.py": "def handler(e, c):\n    pass\n"}, "", nil},
		{"node exports.NAME", Node, map[string]string{"index.js": "exports.main = async (event) => event;\n"},
			"index.main", []string{"index.main"}},
		{"node module.exports object", Node,
			map[string]string{"app.js": "async function run(e) {}\nmodule.exports = { run, async other(e) {}, third: run };\n"},
			"", []string{"app.run", "app.other", "app.third"}},
		{"node export const and function", Node,
			map[string]string{"index.mjs": "const helper = 1;\nexport const lambdaHandler = async (event) => event;\nexport async function handler(event) {}\n"},
			"index.handler", []string{"index.lambdaHandler", "index.handler"}},
		{"node export list", Node, map[string]string{"index.mjs": "const run = async () => 1;\nexport { run as go };\n"},
			"index.go", []string{"index.go"}},
		{"node mention is not an export", Node, map[string]string{"index.mjs": "// exports.handler = x\nconst handler = 1;\nexport default handler;\n"},
			"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, found := findHandlers(dir, tt.lang)
			if got != tt.want || !cmp.Equal(found, tt.wantFound) {
				t.Errorf("findHandlers = %q, %q; want %q, %q", got, found, tt.want, tt.wantFound)
			}
		})
	}
	// Through Build, as `flint deploy DIR` calls it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte("def lambda_handler(event, context):\n    return 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Handler != "main.lambda_handler" {
		t.Errorf("Build: Handler %q, want main.lambda_handler", res.Handler)
	}
}
