package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Merge returns one directory holding the unpacked packages dirs laid over each other in order
// (a later one wins on the same path), as Lambda extracts a function's layers into /opt. One
// package is its own directory; several are merged once per combination, with hard links (no
// copies), into a directory named by the combination and published with an atomic rename.
func (c *Cache) Merge(dirs []string) (string, error) {
	switch len(dirs) {
	case 0:
		return "", nil
	case 1:
		return dirs[0], nil
	}
	h := sha256.Sum256([]byte(strings.Join(dirs, "\x00")))
	final := filepath.Join(c.dir, "merged-"+hex.EncodeToString(h[:16]))
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix+"merge-")
	if err != nil {
		return "", fmt.Errorf("merge layers: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	for _, d := range dirs {
		if err := overlay(d, tmp); err != nil {
			return "", fmt.Errorf("merge layers: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(final); statErr == nil {
			return final, nil // merged concurrently
		}
		return "", fmt.Errorf("merge layers: %w", err)
	}
	return final, nil
}

// overlay links every file of src into dst, replacing what is there.
func overlay(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(target)
		exists := err == nil
		switch {
		case d.IsDir():
			if exists && info.IsDir() {
				return nil
			}
			if exists {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if exists {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			return os.Symlink(link, target)
		default:
			if exists {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			if err := os.Link(path, target); err != nil {
				if !errors.Is(err, os.ErrExist) {
					return err
				}
			}
			return nil
		}
	})
}
