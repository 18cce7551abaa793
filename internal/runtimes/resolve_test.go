package runtimes

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The host's own interpreters, which every Flint machine has (scripts/run.sh installs them):
// Debian's Python and Node. Their versions are read, not assumed.
func hostInterpreters(t *testing.T) (py, pyVersion, node, nodeVersion string) {
	t.Helper()
	py, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skipf("no /usr/bin/python3: %v", err)
	}
	node, err = filepath.EvalSymlinks("/usr/bin/node")
	if err != nil {
		t.Skipf("no /usr/bin/node: %v", err)
	}
	if pyVersion, err = interpreterVersion(context.Background(), py); err != nil {
		t.Fatal(err)
	}
	if nodeVersion, err = interpreterVersion(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	return py, pyVersion, node, nodeVersion
}

// minor is "3.11" of "3.11.2", major "20" of "20.20.2".
func minor(v string) string { p := strings.Split(v, "."); return p[0] + "." + p[1] }
func major(v string) string { return strings.Split(v, ".")[0] }

// absentPython is a Python runtime of the catalogue that is not the host's.
func absentPython(hostMinor string) string {
	if hostMinor == "3.13" {
		return "python3.9"
	}
	return "python3.13"
}

func absentNode(hostMajor string) string {
	if hostMajor == "22" {
		return "nodejs18.x"
	}
	return "nodejs22.x"
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestResolveVersions: a runtime runs on an interpreter of its own version when there is one;
// otherwise on the nearest one, marked as not exact (python3.12 and python3.13 once ran on
// Python 3.11 and nodejs22.x on Node 20 without a word), and refused in strict mode.
func TestResolveVersions(t *testing.T) {
	py, pyV, node, nodeV := hostInterpreters(t)
	// Only /usr/bin and an empty home: no pyenv, no nvm, nothing the machine's user installed.
	env := envOf(map[string]string{"PATH": "/usr/bin:/bin", "HOME": t.TempDir()})
	tab, err := Resolve(context.Background(), Options{Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	pyRT, nodeRT := "python"+minor(pyV), "nodejs"+major(nodeV)+".x"
	for _, tt := range []struct {
		runtime, path, version string
		exact                  bool
	}{
		{pyRT, py, pyV, true},
		{absentPython(minor(pyV)), py, pyV, false},
		{nodeRT, node, nodeV, true},
		{absentNode(major(nodeV)), node, nodeV, false},
	} {
		i, ok := tab.Lookup(tt.runtime)
		if !ok || i.Path != tt.path || i.Version != tt.version || i.Exact != tt.exact {
			t.Errorf("%s: %+v, want path %s version %s exact %v", tt.runtime, i, tt.path, tt.version, tt.exact)
		}
		if tt.exact != (i.Problem() == "") {
			t.Errorf("%s: Problem() = %q", tt.runtime, i.Problem())
		}
		if err := tab.Check(tt.runtime); err != nil {
			t.Errorf("%s: Check on a lenient node = %v", tt.runtime, err)
		}
	}
	absent := absentPython(minor(pyV))
	i, _ := tab.Lookup(absent)
	if p := i.Problem(); !strings.Contains(p, "runs on Python "+pyV) || !strings.Contains(p, "no Python "+strings.TrimPrefix(absent, "python")) {
		t.Errorf("Problem() = %q", p)
	}
	argv, _, err := tab.Entrypoint(mustLookup(t, absent), t.TempDir(), "")
	if err != nil || argv[0] != py {
		t.Errorf("Entrypoint(%s) = %q, %v; want the nearest interpreter %s", absent, argv, err, py)
	}
	var order []string
	for _, i := range tab.List() {
		order = append(order, i.Runtime)
	}
	if got := strings.Join(order, " "); got != "nodejs18.x nodejs20.x nodejs22.x python3.9 python3.10 python3.11 python3.12 python3.13" {
		t.Errorf("List order: %s", got)
	}
	if _, ok := tab.Lookup("provided.al2023"); ok {
		t.Error("provided.al2023 has an interpreter")
	}

	strict, err := Resolve(context.Background(), Options{Getenv: env, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	err = strict.Check(absent)
	if !errors.Is(err, ErrNotAvailable) || !strings.HasPrefix(err.Error(), "The runtime parameter of "+absent+" is not available on this Flint node") {
		t.Errorf("strict Check(%s) = %v, want ErrNotAvailable", absent, err)
	}
	for _, ok := range []string{pyRT, nodeRT, "provided.al2023"} {
		if err := strict.Check(ok); err != nil {
			t.Errorf("strict Check(%s) = %v", ok, err)
		}
	}
}

func mustLookup(t *testing.T, name string) Runtime {
	t.Helper()
	r, ok := Lookup(name)
	if !ok {
		t.Fatalf("no runtime %s", name)
	}
	return r
}

// TestResolveConfigured: --runtime-path names an interpreter for a runtime. It must be of that
// version; a version-manager shim stands for the real interpreter behind it, never run itself.
func TestResolveConfigured(t *testing.T) {
	py, pyV, _, _ := hostInterpreters(t)
	home := t.TempDir()
	env := envOf(map[string]string{"PATH": "/usr/bin", "HOME": home})
	pyRT := "python" + minor(pyV)

	// A symlink to the interpreter in a directory of its own: resolved to the real file.
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
		t.Fatal(err)
	}
	tab, err := Resolve(context.Background(), Options{Getenv: env, Paths: map[string]string{pyRT: filepath.Join(bin, "python3")}})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tab.Lookup(pyRT); i.Path != py || i.Source != "configured" || !i.Exact {
		t.Errorf("configured %s: %+v", pyRT, i)
	}

	// A pyenv-style shim: the interpreter behind it in versions/ is used.
	shims := filepath.Join(home, ".pyenv", "shims")
	real := filepath.Join(home, ".pyenv", "versions", pyV, "bin")
	for _, d := range []string{shims, real} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The shim is a script that would fail if run: only its name is used.
	if err := os.WriteFile(filepath.Join(shims, pyRT), []byte("#!/bin/sh\nexit 97\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(py, filepath.Join(real, pyRT)); err != nil {
		t.Fatal(err)
	}
	tab, err = Resolve(context.Background(), Options{Getenv: envOf(map[string]string{"PATH": shims + ":/usr/bin", "HOME": home}),
		Paths: map[string]string{pyRT: filepath.Join(shims, pyRT)}})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tab.Lookup(pyRT); i.Path != py || !i.Exact {
		t.Errorf("configured shim for %s: %+v, want %s", pyRT, i, py)
	}

	absent := absentPython(minor(pyV))
	for _, tt := range []struct {
		paths map[string]string
		want  string
	}{
		{map[string]string{absent: py}, "that is version " + pyV + ", not " + strings.TrimPrefix(absent, "python")},
		{map[string]string{pyRT: "python3"}, "absolute path"},
		{map[string]string{pyRT: "/nonexistent/python3"}, "no such file"},
		{map[string]string{"provided.al2023": py}, "not a Python or Node runtime"},
		{map[string]string{"python2.7": py}, "not a Python or Node runtime"},
		{map[string]string{absent: filepath.Join(shims, absent)}, "no .pyenv version behind it"},
	} {
		_, err := Resolve(context.Background(), Options{Getenv: env, Paths: tt.paths})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve with %v: %v, want an error with %q", tt.paths, err, tt.want)
		}
	}
}

// TestResolveSkipsShims: PATH's shim directories are never searched (a shim costs ~70 ms per
// start and picks its interpreter from a directory and environment the guest does not share).
func TestResolveSkipsShims(t *testing.T) {
	py, pyV, _, _ := hostInterpreters(t)
	home := t.TempDir()
	shims := filepath.Join(home, ".pyenv", "shims")
	if err := os.MkdirAll(shims, 0o755); err != nil {
		t.Fatal(err)
	}
	// A shim for a version the host lacks, first on PATH: it must not be taken for it.
	absent := absentPython(minor(pyV))
	if err := os.Symlink(py, filepath.Join(shims, absent)); err != nil {
		t.Fatal(err)
	}
	tab, err := Resolve(context.Background(), Options{Getenv: envOf(map[string]string{"PATH": shims + ":/usr/bin", "HOME": home})})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range tab.List() {
		if strings.Contains(i.Path, "/shims/") {
			t.Errorf("%s resolved to a shim: %+v", i.Runtime, i)
		}
	}
	if i, _ := tab.Lookup(absent); i.Exact {
		t.Errorf("%s: %+v, want not exact", absent, i)
	}
}

// TestResolvePyenv: a version installed with pyenv (under ~/.pyenv/versions, the real
// interpreter rather than its shim) is found for its runtime. Skipped where pyenv has no
// version the system lacks.
func TestResolvePyenv(t *testing.T) {
	_, pyV, _, _ := hostInterpreters(t)
	home, _ := os.UserHomeDir()
	env := envOf(map[string]string{"PATH": "/usr/bin", "HOME": home})
	for _, dir := range versionDirs(filepath.Join(home, ".pyenv", "versions")) {
		v := filepath.Base(dir)
		rt := "python" + minor(v)
		if _, ok := Lookup(rt); !ok || minor(v) == minor(pyV) {
			continue
		}
		if _, err := exec.LookPath(filepath.Join(dir, "bin", rt)); err != nil {
			continue
		}
		tab, err := Resolve(context.Background(), Options{Getenv: env})
		if err != nil {
			t.Fatal(err)
		}
		i, _ := tab.Lookup(rt)
		if !i.Exact || i.Source != "pyenv" || !strings.HasPrefix(i.Path, filepath.Join(home, ".pyenv", "versions")+"/") || i.Version != v {
			t.Errorf("%s: %+v, want pyenv's %s", rt, i, v)
		}
		return
	}
	t.Skip("pyenv has no Python of the catalogue that the system lacks")
}

// TestResolveInstallDir: an interpreter `flint runtimes install` put in the install directory
// is found for its runtime before the system's.
func TestResolveInstallDir(t *testing.T) {
	_, _, node, nodeV := hostInterpreters(t)
	dir := t.TempDir()
	rt := "nodejs" + major(nodeV) + ".x"
	bin := filepath.Join(dir, rt, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A hard link: the same real Node at another path (the same file system in tests' TMPDIR
	// is not guaranteed, so fall back to a copy).
	installed := filepath.Join(bin, "node")
	if err := os.Link(node, installed); err != nil {
		copyFile(t, node, installed)
	}
	tab, err := Resolve(context.Background(), Options{Getenv: envOf(map[string]string{"PATH": "/usr/bin"}), InstallDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tab.Lookup(rt); i.Path != installed || i.Source != "flint" || !i.Exact {
		t.Errorf("%s: %+v, want %s from flint", rt, i, installed)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestNearest(t *testing.T) {
	list := []candidate{{path: "a", version: "3.9.18"}, {path: "b", version: "3.11.2"}, {path: "c", version: "3.13.0"}}
	for want, path := range map[string]string{"3.9": "a", "3.10": "b", "3.12": "c", "3.11": "b", "3.14": "c"} {
		if c, _ := nearest(list, want); c.path != path {
			t.Errorf("nearest(%s) = %s, want %s", want, c.path, path)
		}
	}
}
