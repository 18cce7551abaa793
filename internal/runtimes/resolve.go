package runtimes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotAvailable means a runtime has no interpreter of its own version on this node and the
// node refuses to run it on another (strict mode).
var ErrNotAvailable = errors.New("runtimes: no interpreter of this version")

// Interpreter is the host program that runs a Python or Node runtime on this node.
type Interpreter struct {
	Runtime string `json:"runtime"`           // the AWS identifier, e.g. python3.12
	Path    string `json:"path,omitempty"`    // absolute host path, symlinks resolved; "" when none
	Version string `json:"version,omitempty"` // what the interpreter says it is: 3.12.1, 22.9.0
	// Exact reports whether Version is the runtime's (3.12.x for python3.12, 22.x for
	// nodejs22.x). When false, Path is the nearest version found, used instead.
	Exact bool `json:"exact"`
	// Source says where Path was found: "configured" (--runtime-path), "flint" (installed by
	// `flint runtimes install`), "PATH", "pyenv", "nvm".
	Source string `json:"source,omitempty"`
}

// Wanted is the version the runtime asks for: "3.12" or "22".
func (i Interpreter) Wanted() string {
	if v, ok := strings.CutPrefix(i.Runtime, "python"); ok {
		return v
	}
	return strings.TrimSuffix(strings.TrimPrefix(i.Runtime, "nodejs"), ".x")
}

// Problem describes, in one sentence, why i is not the runtime's own interpreter; "" when it is.
func (i Interpreter) Problem() string {
	lang := "Python"
	if strings.HasPrefix(i.Runtime, "nodejs") {
		lang = "Node.js"
	}
	switch {
	case i.Exact:
		return ""
	case i.Path == "":
		return fmt.Sprintf("%s has no interpreter on this Flint node: no %s found", i.Runtime, lang)
	}
	return fmt.Sprintf("%s runs on %s %s (%s) on this Flint node: no %s %s interpreter was found",
		i.Runtime, lang, i.Version, i.Path, lang, i.Wanted())
}

// Options says where Resolve looks besides the usual places.
type Options struct {
	// Paths maps a runtime to the interpreter it must use (--runtime-path python3.12=/usr/local/bin/python3.12).
	Paths map[string]string
	// InstallDir is where `flint runtimes install` puts interpreters: InstallDir/nodejs22.x/bin/node.
	InstallDir string
	// Strict refuses runtimes without an interpreter of their own version (Check).
	Strict bool
	// Getenv reads PATH, HOME, PYENV_ROOT and NVM_DIR; nil means os.Getenv.
	Getenv func(string) string
}

// Table is this node's interpreter for each Python and Node runtime, found once by Resolve. It
// is read-only, safe for concurrent use, and a nil *Table means Default().
type Table struct {
	strict bool
	byName map[string]Interpreter
}

// Default is the table Resolve makes with no options, made once per process.
var Default = sync.OnceValue(func() *Table {
	t, err := Resolve(context.Background(), Options{})
	if err != nil { // only configured paths fail, and there are none: unreachable
		return &Table{byName: map[string]Interpreter{}}
	}
	return t
})

func (t *Table) orDefault() *Table {
	if t == nil {
		return Default()
	}
	return t
}

// Lookup returns the interpreter of a Python or Node runtime.
func (t *Table) Lookup(runtime string) (Interpreter, bool) {
	i, ok := t.orDefault().byName[runtime]
	return i, ok
}

// List returns every Python and Node runtime's interpreter: Node's, then Python's, each by
// version (python3.9 before python3.10).
func (t *Table) List() []Interpreter {
	t = t.orDefault()
	out := make([]Interpreter, 0, len(t.byName))
	for _, i := range t.byName {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Interpreter) int {
		if c := strings.Compare(strings.TrimRight(a.Runtime, "0123456789.x"), strings.TrimRight(b.Runtime, "0123456789.x")); c != 0 {
			return c
		}
		return compareVersions(a.Wanted(), b.Wanted())
	})
	return out
}

// Strict reports whether runtimes without their own interpreter are refused.
func (t *Table) Strict() bool { return t.orDefault().strict }

// Check returns an error wrapping ErrNotAvailable when the node is strict and runtime has no
// interpreter of its version. Provided runtimes, and unknown names, are not its business.
func (t *Table) Check(runtime string) error {
	t = t.orDefault()
	i, ok := t.byName[runtime]
	if !t.strict || !ok || i.Exact {
		return nil
	}
	return &notAvailableError{i}
}

type notAvailableError struct{ i Interpreter }

func (e *notAvailableError) Error() string {
	what := "no interpreter was found"
	if e.i.Path != "" {
		what = "no interpreter of that version was found (only " + e.i.Version + ")"
	}
	return fmt.Sprintf("The runtime parameter of %s is not available on this Flint node: %s and the node runs with --strict-runtimes. "+
		"Install one (flint runtimes lists what was found), or name it with --runtime-path %s=PATH.", e.i.Runtime, what, e.i.Runtime)
}

func (e *notAvailableError) Unwrap() error { return ErrNotAvailable }

// Entrypoint is r.Entrypoint with this table's interpreters.
func (t *Table) Entrypoint(r Runtime, taskDir, optDir string) (argv []string, env []string, err error) {
	interp := ""
	if r.Family == Python || r.Family == Node {
		i, ok := t.Lookup(r.Name)
		if !ok || i.Path == "" {
			return nil, nil, fmt.Errorf("runtime %s: no %s interpreter on this host: %w", r.Name, r.Family, exec.ErrNotFound)
		}
		interp = i.Path
	}
	return r.entrypoint(interp, taskDir, optDir)
}

// candidate is an interpreter found on the host.
type candidate struct {
	path, version, source string
}

// Resolve finds each Python and Node runtime's interpreter: a configured path first, then
// Flint's own installs, PATH (without version-manager shims: a shim picks its interpreter from
// the caller's directory and environment, which the guest does not share, and costs ~70 ms a
// start), /usr/local/bin and /usr/bin, pyenv's and nvm's versions. Each interpreter's version
// is asked once per process (`--version`). A runtime with no interpreter of its version gets
// the nearest version found. A configured path that is missing, a shim with no matching
// version behind it, or of another version is an error.
func Resolve(ctx context.Context, opts Options) (*Table, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	t := &Table{strict: opts.Strict, byName: make(map[string]Interpreter)}
	home := getenv("HOME")
	pyenv := getenv("PYENV_ROOT")
	if pyenv == "" && home != "" {
		pyenv = filepath.Join(home, ".pyenv")
	}
	nvm := getenv("NVM_DIR")
	if nvm == "" && home != "" {
		nvm = filepath.Join(home, ".nvm")
	}
	var dirs []string
	for _, d := range append(filepath.SplitList(getenv("PATH")), "/usr/local/bin", "/usr/bin") {
		if d != "" && filepath.IsAbs(d) && !isShim(d+"/") && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}

	var errs []error
	configured := map[string]candidate{}
	for rt, p := range opts.Paths {
		r, ok := Lookup(rt)
		if !ok || (r.Family != Python && r.Family != Node) {
			errs = append(errs, fmt.Errorf("runtime path %s=%s: %s is not a Python or Node runtime", rt, p, rt))
			continue
		}
		c, err := configuredCandidate(ctx, r, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("runtime path %s=%s: %w", rt, p, err))
			continue
		}
		configured[rt] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	var pythons, nodes []candidate
	add := func(list *[]candidate, p, source string) {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil || isShim(resolved) || !isExecutable(resolved) {
			return
		}
		if slices.ContainsFunc(*list, func(c candidate) bool { return c.path == resolved }) {
			return
		}
		v, err := interpreterVersion(ctx, resolved)
		if err != nil {
			return
		}
		*list = append(*list, candidate{path: resolved, version: v, source: source})
	}
	for _, rt := range Names() {
		if strings.HasPrefix(rt, "nodejs") && opts.InstallDir != "" {
			add(&nodes, filepath.Join(opts.InstallDir, rt, "bin", "node"), "flint")
		}
	}
	for _, d := range dirs {
		for _, rt := range Names() {
			if v, ok := strings.CutPrefix(rt, "python"); ok {
				add(&pythons, filepath.Join(d, "python"+v), "PATH")
			}
		}
		add(&pythons, filepath.Join(d, "python3"), "PATH")
		add(&nodes, filepath.Join(d, "node"), "PATH")
		add(&nodes, filepath.Join(d, "nodejs"), "PATH")
	}
	if pyenv != "" {
		for _, dir := range versionDirs(filepath.Join(pyenv, "versions")) {
			for _, rt := range Names() {
				if v, ok := strings.CutPrefix(rt, "python"); ok {
					add(&pythons, filepath.Join(dir, "bin", "python"+v), "pyenv")
				}
			}
		}
	}
	if nvm != "" {
		for _, dir := range versionDirs(filepath.Join(nvm, "versions", "node")) {
			add(&nodes, filepath.Join(dir, "bin", "node"), "nvm")
		}
	}

	for _, rt := range Names() {
		r, _ := Lookup(rt)
		var list []candidate
		switch r.Family {
		case Python:
			list = pythons
		case Node:
			list = nodes
		default:
			continue
		}
		i := Interpreter{Runtime: rt}
		want := i.Wanted()
		if c, ok := configured[rt]; ok {
			i.Path, i.Version, i.Source, i.Exact = c.path, c.version, c.source, true
		} else if c, ok := nearest(list, want); ok {
			i.Path, i.Version, i.Source, i.Exact = c.path, c.version, c.source, versionMatches(c.version, want)
		}
		t.byName[rt] = i
	}
	return t, nil
}

// configuredCandidate checks an interpreter named for r: it exists, is not a shim (or a shim
// with r's version behind it in its version manager's versions/), and is of r's version.
func configuredCandidate(ctx context.Context, r Runtime, p string) (candidate, error) {
	if !filepath.IsAbs(p) {
		return candidate{}, errors.New("the interpreter must be an absolute path")
	}
	want := Interpreter{Runtime: r.Name}.Wanted()
	if isShim(p) {
		// ~/.pyenv/shims/python3.12 stands for ~/.pyenv/versions/*/bin/python3.12.
		root := filepath.Dir(filepath.Dir(p))
		for _, dir := range slices.Backward(versionDirs(filepath.Join(root, "versions"))) {
			real, err := filepath.EvalSymlinks(filepath.Join(dir, "bin", filepath.Base(p)))
			if err != nil {
				continue
			}
			if v, err := interpreterVersion(ctx, real); err == nil && versionMatches(v, want) {
				return candidate{path: real, version: v, source: "configured"}, nil
			}
		}
		return candidate{}, fmt.Errorf("a version-manager shim, and no %s version behind it matches %s", filepath.Base(root), want)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return candidate{}, err
	}
	if !isExecutable(resolved) {
		return candidate{}, fmt.Errorf("%s is not an executable file", resolved)
	}
	v, err := interpreterVersion(ctx, resolved)
	if err != nil {
		return candidate{}, err
	}
	if !versionMatches(v, want) {
		return candidate{}, fmt.Errorf("that is version %s, not %s", v, want)
	}
	for _, reserved := range []string{"/opt", "/var/task", "/var/runtime", "/tmp", "/proc", "/dev", "/etc"} {
		if resolved == reserved || strings.HasPrefix(resolved, reserved+"/") {
			// The linux sandbox shows the interpreter's installation at its host path; these
			// paths are the function's own there (layers, code, clients, scratch).
			return candidate{}, fmt.Errorf("%s is under %s, which functions see as their own in the sandbox: install it elsewhere (e.g. /usr/local)", resolved, reserved)
		}
	}
	return candidate{path: resolved, version: v, source: "configured"}, nil
}

// nearest returns the first candidate of version want, else the one whose version is closest
// (the newer one on a tie).
func nearest(list []candidate, want string) (candidate, bool) {
	for _, c := range list {
		if versionMatches(c.version, want) {
			return c, true
		}
	}
	if len(list) == 0 {
		return candidate{}, false
	}
	w := versionKey(want)
	best := slices.MinFunc(list, func(a, b candidate) int {
		da, db := distance(versionKey(a.version), w), distance(versionKey(b.version), w)
		if da != db {
			return cmp.Compare(da, db)
		}
		return -compareVersions(a.version, b.version)
	})
	return best, true
}

// versionKey is the number that versions of one family are compared by: the minor for Python
// 3.x, the major for Node.
func versionKey(v string) int {
	parts := strings.Split(v, ".")
	idx := 0
	if len(parts) > 1 && parts[0] == "3" { // Python 3.x: the minor tells versions apart
		idx = 1
	}
	n, _ := strconv.Atoi(parts[idx])
	return n
}

func distance(a, b int) int { return max(a-b, b-a) }

// versionMatches reports whether version (3.12.1, 22.9.0) is of want (3.12, 22).
func versionMatches(version, want string) bool {
	return version == want || strings.HasPrefix(version, want+".")
}

// compareVersions orders dotted versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		na, _ := strconv.Atoi(pa[i])
		nb, _ := strconv.Atoi(pb[i])
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

// versionDirs returns the subdirectories of dir named like versions (3.12.1, v22.9.0), newest
// first.
func versionDirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && versionName().MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		return -compareVersions(strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v"))
	})
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

var (
	versionName   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?$`) })
	versionOutput = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:Python |^v)(\d+\.\d+(?:\.\d+)?)`) })
)

// versions caches what each interpreter said its version is, by path, size and modification
// time, for the life of the process: asking costs a process start (~20 ms for Python).
var versions struct {
	sync.Mutex
	m map[versionCacheKey]string
}

type versionCacheKey struct {
	path  string
	size  int64
	mtime time.Time
}

// interpreterVersion runs `path --version` once per process and returns the version it prints
// (3.12.1 from "Python 3.12.1", 22.9.0 from "v22.9.0").
func interpreterVersion(ctx context.Context, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := versionCacheKey{path, fi.Size(), fi.ModTime()}
	versions.Lock()
	v, ok := versions.m[key]
	versions.Unlock()
	if ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // nothing of ours steers it (PYTHONHOME, NODE_OPTIONS)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	m := versionOutput().FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return "", fmt.Errorf("%s --version printed %q, not a version", path, out)
	}
	versions.Lock()
	if versions.m == nil {
		versions.m = make(map[versionCacheKey]string)
	}
	versions.m[key] = m[1]
	versions.Unlock()
	return m[1], nil
}
