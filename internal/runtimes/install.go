package runtimes

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// clients holds the runtime interface clients, laid out as they appear under /var/runtime.
//
//go:embed python/bootstrap.py nodejs/*.mjs nodejs/*.cjs
var clients embed.FS

// Install writes the embedded runtime clients under dir, which is later mounted read-only at
// /var/runtime in the guest. It is idempotent: files that already hold the right bytes are left
// alone, others are replaced atomically (temporary file, then rename), so it is safe to call
// while environments are running from dir.
func Install(dir string) error {
	err := fs.WalkDir(clients, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := clients.ReadFile(name)
		if err != nil {
			return err
		}
		return writeFileAtomic(dst, data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("install runtime clients in %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic makes name hold data with mode perm, replacing it only if it differs.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if cur, err := os.ReadFile(name); err == nil && bytes.Equal(cur, data) {
		fi, err := os.Stat(name)
		if err != nil {
			return err
		}
		if fi.Mode().Perm() == perm {
			return nil
		}
		return os.Chmod(name, perm)
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
