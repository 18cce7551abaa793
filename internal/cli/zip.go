package cli

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// zipModTime is the modification time of every entry flint zips: the zip format's epoch, so the
// same tree always gives the same bytes and the same CodeSha256.
var zipModTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// loadPackage returns the zip bytes of a deployment package: a directory, zipped in memory, or
// a .zip file, read as is.
func loadPackage(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	switch {
	case info.IsDir():
		b, err := zipDir(path)
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", path, err)
		}
		return b, nil
	case info.Mode().IsRegular() && strings.EqualFold(filepath.Ext(path), ".zip"):
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("package: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("package %s is neither a directory nor a .zip file", path)
	}
}

// zipDir zips the tree under root deterministically: entries in lexical order, each directory
// just before its contents; every modification time zipModTime; Unix modes kept; directories
// and symlinks included, a symlink stored as its target; nothing skipped but .git. Sockets,
// devices and pipes are an error: a function package cannot carry them.
func zipDir(root string) ([]byte, error) {
	// A root given as a symlink is the directory it points to.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// WalkDir visits in lexical order and does not follow symlinks.
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's or submodule's .git file
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return addEntry(zw, p, filepath.ToSlash(rel), info)
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addEntry writes the file at p (described by info, not followed if a symlink) as entry name.
func addEntry(zw *zip.Writer, p, name string, info fs.FileInfo) error {
	fh := &zip.FileHeader{Name: name, Modified: zipModTime}
	fh.SetMode(info.Mode())
	switch mode := info.Mode(); {
	case mode.IsDir():
		fh.Name += "/"
		fh.Method = zip.Store
		_, err := zw.CreateHeader(fh)
		return err
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		fh.Method = zip.Store
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, filepath.ToSlash(target))
		return err
	case mode.IsRegular():
		fh.Method = zip.Deflate
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	default:
		return fmt.Errorf("%s: cannot package a file of type %v", name, mode.Type())
	}
}
