package runtimes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/flint-run/flint/internal/sandbox"
)

// ErrNoBootstrap means a provided* function has no bootstrap in its package or its layers
// (Lambda's Runtime.InvalidEntrypoint). Entrypoint wraps it in an error whose message is
// Lambda's: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".
var ErrNoBootstrap = errors.New("runtimes: no executable bootstrap")

// Guest paths of the files Install writes, and of the bootstraps a provided runtime may use.
var (
	pythonClient  = path.Join(sandbox.GuestRuntimeDir, "python", "bootstrap.py")
	nodeClient    = path.Join(sandbox.GuestRuntimeDir, "nodejs", "index.mjs")
	taskBootstrap = path.Join(sandbox.GuestTaskRoot, "bootstrap")
	optBootstrap  = path.Join(sandbox.GuestOptRoot, "bootstrap")
)

// Entrypoint returns the argv and the runtime-specific environment (KEY=VALUE) that start r.
// Paths in both are guest paths. taskDir and optDir are the host directories that will appear
// at /var/task and /opt (optDir may be empty); they are read only to find a provided runtime's
// bootstrap. Interpreters are host paths and are absolute. The caller adds the standard Lambda
// variables. Python and Node runtimes run on Default()'s interpreters; a server with its own
// options uses Table.Entrypoint.
func (r Runtime) Entrypoint(taskDir, optDir string) (argv []string, env []string, err error) {
	return Default().Entrypoint(r, taskDir, optDir)
}

// entrypoint is Entrypoint with the interpreter of a Python or Node runtime given.
func (r Runtime) entrypoint(interp, taskDir, optDir string) (argv []string, env []string, err error) {
	switch r.Family {
	case Provided:
		switch {
		case hasBootstrap(taskDir):
			return []string{taskBootstrap}, nil, nil
		case optDir != "" && hasBootstrap(optDir):
			return []string{optBootstrap}, nil, nil
		}
		return nil, nil, noBootstrapError{}
	case Python:
		version := strings.TrimPrefix(r.Name, "python") // "3.12"
		pythonPath := strings.Join([]string{
			path.Join(sandbox.GuestRuntimeDir, "python"),
			sandbox.GuestTaskRoot,
			path.Join(sandbox.GuestOptRoot, "python", "lib", "python"+version, "site-packages"),
			path.Join(sandbox.GuestOptRoot, "python"),
		}, ":")
		return []string{interp, pythonClient}, []string{
			"AWS_EXECUTION_ENV=AWS_Lambda_" + r.Name,
			"PYTHONPATH=" + pythonPath,
			"PYTHONUNBUFFERED=1",
			"PYTHONDONTWRITEBYTECODE=1",
		}, nil
	case Node:
		major := strings.TrimSuffix(strings.TrimPrefix(r.Name, "nodejs"), ".x") // "20"
		nodePath := strings.Join([]string{
			path.Join(sandbox.GuestOptRoot, "nodejs", "node"+major, "node_modules"),
			path.Join(sandbox.GuestOptRoot, "nodejs", "node_modules"),
			path.Join(sandbox.GuestRuntimeDir, "node_modules"),
			sandbox.GuestTaskRoot,
		}, ":")
		return []string{interp, nodeClient}, []string{
			"AWS_EXECUTION_ENV=AWS_Lambda_" + r.Name,
			"NODE_PATH=" + nodePath,
		}, nil
	}
	return nil, nil, fmt.Errorf("runtime %q: unknown family %d", r.Name, r.Family)
}

// noBootstrapError carries Lambda's message and matches ErrNoBootstrap.
type noBootstrapError struct{}

func (noBootstrapError) Error() string {
	return "Couldn't find valid bootstrap(s): [" + taskBootstrap + " " + optBootstrap + "]"
}

func (noBootstrapError) Unwrap() error { return ErrNoBootstrap }

// hasBootstrap reports whether dir holds a file named bootstrap, as Lambda checks it: present
// and not a directory. A symlink with an absolute target points into the guest's file system,
// which the host cannot resolve, so it counts; a relative one must resolve to a regular file.
func hasBootstrap(dir string) bool {
	if dir == "" {
		return false
	}
	name := filepath.Join(dir, "bootstrap")
	fi, err := os.Lstat(name)
	if err != nil {
		return false
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(name)
		if err != nil {
			return false
		}
		if path.IsAbs(target) {
			return true
		}
		fi, err = os.Stat(name)
		if err != nil {
			return false
		}
	}
	return fi.Mode().IsRegular()
}

func isShim(p string) bool { return strings.Contains(p, "/shims/") }

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
