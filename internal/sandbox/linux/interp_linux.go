package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flint-run/flint/internal/sandbox"
)

// interpreterHome is the installation of an interpreter that the root built from the host's
// directories does not show, such as pyenv's ~/.pyenv/versions/3.12.1 or an interpreter
// `flint runtimes install` put under the data directory: the directory above the bin/ holding
// argv[0]. It is shown read-only at the same path, so that the interpreter finds its libraries
// where it was built to (pyenv's libpython is found through an absolute RPATH). "" when
// argv[0] is in the root already (/usr/bin/python3.11), a guest path (/var/task/bootstrap), or
// somewhere the root cannot show it at its own path (/proc, /dev). Under /tmp it is shown
// inside the environment's own /tmp.
func interpreterHome(argv []string) string {
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return ""
	}
	p := filepath.Clean(argv[0])
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if slices.Contains(hostDirs, first) || first == "proc" || first == "dev" {
		return ""
	}
	for _, g := range []string{sandbox.GuestTaskRoot, sandbox.GuestOptRoot, sandbox.GuestRuntimeDir} {
		if p == g || strings.HasPrefix(p, g+"/") {
			return ""
		}
	}
	dir := filepath.Dir(p)
	if filepath.Base(dir) == "bin" {
		dir = filepath.Dir(dir)
	}
	if dir == "/" {
		return ""
	}
	return dir
}

// bindInterpreter shows home (interpreterHome) read-only at the same path under the root r.
func bindInterpreter(r, home string) error {
	if home == "" {
		return nil
	}
	guest := filepath.Join(r, home)
	if err := os.MkdirAll(guest, 0o755); err != nil {
		return fmt.Errorf("interpreter %s: %w", home, err)
	}
	return bindRO(home, guest, true, roFlags)
}
