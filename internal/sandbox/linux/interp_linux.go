package linux

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flint-run/flint/internal/sandbox"
)

// guestLang is where an interpreter installed outside the host directories appears in the
// guest, read-only: where AWS's own runtimes live (/var/lang/bin/python3.12). Showing it at its
// host path instead would show part of the host's tree (pyenv's /root/.pyenv, Flint's data
// directory) to the function.
const guestLang = "/var/lang"

// interpreterHome is the installation of an interpreter that the root built from the host's
// directories does not show, such as pyenv's ~/.pyenv/versions/3.12.1 or an interpreter
// `flint runtimes install` put under the data directory: the directory above the bin/ holding
// argv[0]. "" when argv[0] is in the root already (/usr/bin/python3.11), a guest path
// (/var/task/bootstrap), or not in a bin/ directory of its own.
func interpreterHome(argv []string) string {
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return ""
	}
	p := filepath.Clean(argv[0])
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if slices.Contains(hostDirs, first) {
		return ""
	}
	for _, g := range []string{sandbox.GuestTaskRoot, sandbox.GuestOptRoot, sandbox.GuestRuntimeDir, guestLang} {
		if p == g || strings.HasPrefix(p, g+"/") {
			return ""
		}
	}
	dir := filepath.Dir(p)
	if filepath.Base(dir) != "bin" || filepath.Dir(dir) == "/" {
		return ""
	}
	return filepath.Dir(dir)
}

// inGuestLang rewrites argv and env for an interpreter whose installation home is shown at
// /var/lang: argv[0] becomes its path there, and the dynamic linker looks in /var/lang/lib
// first, as on AWS (pyenv's libpython is found through an RPATH naming its host path).
// Interpreters find the rest relative to their executable (Python's prefix).
func inGuestLang(home string, argv, env []string) ([]string, []string) {
	if home == "" {
		return argv, env
	}
	argv = slices.Clone(argv)
	argv[0] = path.Join(guestLang, filepath.ToSlash(strings.TrimPrefix(filepath.Clean(argv[0]), home)))
	return argv, guestLangEnv(home, env)
}

// guestLangEnv is inGuestLang's change to env alone (a prestarted runtime's binding).
func guestLangEnv(home string, env []string) []string {
	if home == "" {
		return env
	}
	env = slices.Clone(env)
	const lib = guestLang + "/lib"
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LD_LIBRARY_PATH="); ok {
			if !slices.Contains(strings.Split(v, ":"), lib) {
				env[i] = "LD_LIBRARY_PATH=" + lib + ":" + v // first, as on AWS
			}
			return env
		}
	}
	return append(env, "LD_LIBRARY_PATH="+lib)
}

// bindInterpreter shows home (interpreterHome) read-only at /var/lang under the root r, as the
// function's own directories are shown: its host path (a user's pyenv, the data directory) does
// not appear in the environment's mountinfo.
func bindInterpreter(r, home string) error {
	if home == "" {
		return nil
	}
	guest := filepath.Join(r, guestLang)
	if err := os.MkdirAll(guest, 0o755); err != nil {
		return fmt.Errorf("interpreter %s: %w", home, err)
	}
	return hiddenRO(home, guest)
}
