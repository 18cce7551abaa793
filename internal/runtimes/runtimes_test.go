package runtimes

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		want   Family
		wantOK bool
	}{
		{"provided", Provided, true},
		{"provided.al2", Provided, true},
		{"provided.al2023", Provided, true},
		{"python3.9", Python, true},
		{"python3.13", Python, true},
		{"nodejs18.x", Node, true},
		{"nodejs22.x", Node, true},
		{"python3.8", 0, false},
		{"nodejs16.x", 0, false},
		{"go1.x", 0, false},
		{"Python3.12", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(tt.name)
			if ok != tt.wantOK || got.Family != tt.want || (ok && got.Name != tt.name) {
				t.Errorf("Lookup(%q) = %+v, %v; want family %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	want := []string{
		"nodejs18.x", "nodejs20.x", "nodejs22.x",
		"provided", "provided.al2", "provided.al2023",
		"python3.10", "python3.11", "python3.12", "python3.13", "python3.9",
	}
	got := Names()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if Names()[0] != want[0] {
		t.Errorf("Names() shares its slice with the caller")
	}
}

func TestEntrypointProvided(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		task     map[string]string
		opt      map[string]string // nil: no layers (optDir "")
		taskDir  bool              // task/bootstrap is a directory
		wantArgv []string
	}{
		{name: "bootstrap in task", task: map[string]string{"bootstrap": "#!/bin/sh\n"}, wantArgv: []string{"/var/task/bootstrap"}},
		{name: "bootstrap in layer", task: map[string]string{"main.go": ""}, opt: map[string]string{"bootstrap": "#!/bin/sh\n"}, wantArgv: []string{"/opt/bootstrap"}},
		{name: "task wins over layer", task: map[string]string{"bootstrap": ""}, opt: map[string]string{"bootstrap": ""}, wantArgv: []string{"/var/task/bootstrap"}},
		{name: "directory named bootstrap", taskDir: true, opt: map[string]string{"bootstrap": ""}, wantArgv: []string{"/opt/bootstrap"}},
		{name: "none", task: map[string]string{"handler.py": ""}, opt: map[string]string{"python/x.py": ""}},
		{name: "none without layers", task: map[string]string{"handler.py": ""}},
	}
	for _, rt := range []string{"provided", "provided.al2", "provided.al2023"} {
		for _, tt := range tests {
			t.Run(rt+"/"+tt.name, func(t *testing.T) {
				taskDir := t.TempDir()
				writeFiles(t, taskDir, tt.task)
				if tt.taskDir {
					if err := os.Mkdir(filepath.Join(taskDir, "bootstrap"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				optDir := ""
				if tt.opt != nil {
					optDir = t.TempDir()
					writeFiles(t, optDir, tt.opt)
				}
				r, _ := Lookup(rt)
				argv, env, err := r.Entrypoint(taskDir, optDir)
				if tt.wantArgv == nil {
					const want = "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
					if !errors.Is(err, ErrNoBootstrap) || err.Error() != want {
						t.Errorf("Entrypoint error = %v, want ErrNoBootstrap with message %q", err, want)
					}
					return
				}
				if err != nil {
					t.Fatalf("Entrypoint: %v", err)
				}
				if diff := cmp.Diff(tt.wantArgv, argv); diff != "" {
					t.Errorf("argv (-want +got):\n%s", diff)
				}
				if len(env) != 0 {
					t.Errorf("env = %q, want none (no AWS_EXECUTION_ENV for provided)", env)
				}
			})
		}
	}
}

func TestEntrypointSymlinkBootstrap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		wantOK bool
	}{
		{"absolute target resolved in the guest", "/opt/bin/server", true},
		{"relative target", "bin/server", true},
		{"dangling relative target", "bin/missing", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taskDir := t.TempDir()
			writeFiles(t, taskDir, map[string]string{"bin/server": ""})
			if err := os.Symlink(tt.target, filepath.Join(taskDir, "bootstrap")); err != nil {
				t.Fatal(err)
			}
			r, _ := Lookup("provided.al2023")
			_, _, err := r.Entrypoint(taskDir, "")
			if gotOK := err == nil; gotOK != tt.wantOK {
				t.Errorf("Entrypoint error = %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

func TestEntrypointInterpreted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		runtime string
		client  string
		env     []string
	}{
		{
			runtime: "python3.12",
			client:  "/var/runtime/python/bootstrap.py",
			env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_python3.12",
				"PYTHONPATH=/var/runtime/python:/var/task:/opt/python/lib/python3.12/site-packages:/opt/python",
				"PYTHONUNBUFFERED=1",
				"PYTHONDONTWRITEBYTECODE=1",
			},
		},
		{
			runtime: "python3.9",
			client:  "/var/runtime/python/bootstrap.py",
			env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_python3.9",
				"PYTHONPATH=/var/runtime/python:/var/task:/opt/python/lib/python3.9/site-packages:/opt/python",
				"PYTHONUNBUFFERED=1",
				"PYTHONDONTWRITEBYTECODE=1",
			},
		},
		{
			runtime: "nodejs22.x",
			client:  "/var/runtime/nodejs/index.mjs",
			env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_nodejs22.x",
				"NODE_PATH=/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/task",
			},
		},
		{
			runtime: "nodejs18.x",
			client:  "/var/runtime/nodejs/index.mjs",
			env: []string{
				"AWS_EXECUTION_ENV=AWS_Lambda_nodejs18.x",
				"NODE_PATH=/opt/nodejs/node18/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/task",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			r, _ := Lookup(tt.runtime)
			argv, env, err := r.Entrypoint(t.TempDir(), "")
			if errors.Is(err, exec.ErrNotFound) {
				t.Skipf("%s: %v", tt.runtime, err)
			}
			if err != nil {
				t.Fatalf("Entrypoint: %v", err)
			}
			if len(argv) != 2 || argv[1] != tt.client {
				t.Fatalf("argv = %q, want [<interpreter> %s]", argv, tt.client)
			}
			if !filepath.IsAbs(argv[0]) || strings.Contains(argv[0], "/shims/") {
				t.Errorf("interpreter %q: want an absolute path that is not a shim", argv[0])
			}
			if fi, err := os.Stat(argv[0]); err != nil || fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("interpreter %q is not an executable file (%v)", argv[0], err)
			}
			if diff := cmp.Diff(tt.env, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "runtime") // does not exist yet
	if err := Install(dir); err != nil {
		t.Fatalf("Install: %v", err)
	}
	want := map[string]string{}
	fs.WalkDir(clients, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := clients.ReadFile(name)
			want[name] = string(b)
		}
		return err
	})
	for _, name := range []string{"python/bootstrap.py", "nodejs/index.mjs"} {
		if want[name] == "" {
			t.Errorf("embedded clients lack %s", name)
		}
	}

	// Damage one file: a second Install repairs it and is otherwise a no-op.
	if err := os.WriteFile(filepath.Join(dir, "nodejs", "index.mjs"), []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := Install(dir); err != nil {
			t.Fatalf("Install #%d: %v", i+2, err)
		}
	}

	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)] = string(b)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("installed files (-want +got):\n%s", diff)
	}
}
