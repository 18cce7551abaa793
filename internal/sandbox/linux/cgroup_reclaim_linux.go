// Ending a dead server's environments from its cgroups alone, as its reaper does or as a later
// server does for an orphan (see cgroup_parent_linux.go): nothing else of the server is needed.

package linux

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// reclaimRun ends a server's environments from their cgroups alone (parents holds the run's
// directory in every hierarchy, the locked one first): it kills every process in them (v2's
// cgroup.kill where there is one), then thaws them (a frozen task dies once thawed, without
// running again), removes the environments' cgroups, then the parents, the locked one last. It
// returns the environments' names.
func reclaimRun(ctx context.Context, parents []string) ([]string, error) {
	seen := map[string]bool{}
	var envs []string
	for _, p := range parents {
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				envs = append(envs, e.Name())
			}
		}
	}
	for _, p := range parents {
		if write(filepath.Join(p, "cgroup.kill"), "1") == nil {
			continue
		}
		for _, env := range envs {
			killTree(filepath.Join(p, env))
		}
	}
	for _, p := range parents {
		for _, env := range envs {
			thawTree(filepath.Join(p, env))
		}
	}
	var errs []error
	for _, p := range parents {
		for _, env := range envs {
			if err := removeTree(ctx, filepath.Join(p, env)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for i := len(parents) - 1; i >= 0; i-- {
		if err := removeCgroup(ctx, parents[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return envs, errors.Join(errs...)
}

// killTree sends SIGKILL to every process in the cgroup d and the cgroups below it.
func killTree(d string) {
	for _, pid := range procs(d) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if e.IsDir() {
			killTree(filepath.Join(d, e.Name()))
		}
	}
}

// thawTree thaws the cgroup d and those below it, whichever freezer they have.
func thawTree(d string) {
	if b, err := os.ReadFile(filepath.Join(d, "freezer.state")); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
		_ = write(filepath.Join(d, "freezer.state"), "THAWED")
	}
	if b, err := os.ReadFile(filepath.Join(d, "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) != "0" {
		_ = write(filepath.Join(d, "cgroup.freeze"), "0")
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if e.IsDir() {
			thawTree(filepath.Join(d, e.Name()))
		}
	}
}

// removeTree removes the cgroup d and those below it, deepest first.
func removeTree(ctx context.Context, d string) error {
	entries, _ := os.ReadDir(d)
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(ctx, filepath.Join(d, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := removeCgroup(ctx, d); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
