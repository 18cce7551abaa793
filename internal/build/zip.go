package build

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// MS-DOS date and time of 1980-01-01 00:00:00, the zip format's epoch: every entry's timestamp.
// They are set directly (not through FileHeader.Modified) so that archive/zip writes no
// extended-timestamp extra field.
const (
	dosDate1980 = 1<<5 | 1 // year 0 (1980), month 1, day 1
	dosTime0    = 0
)

type zipped struct {
	zip      []byte
	unzipped int64
}

// ZipDir zips the tree under dir as Build does, with nothing pruned but .git: for layers and
// ready-made packages. It returns the zip and the total size of its files.
func ZipDir(dir string, opts Options) ([]byte, int64, error) {
	z, err := zipTree(dir, opts.limits())
	if err != nil {
		return nil, 0, fmt.Errorf("zip %s: %w", dir, err)
	}
	return z.zip, z.unzipped, nil
}

// zipTree zips the regular files under root reproducibly: entries sorted by path, only files (no
// directory entries), every timestamp 1980-01-01, modes 0755 for executables and 0644 for the
// rest, no extra fields. Symlinks are stored as the files they point to. The unzipped size is
// checked against l before anything is compressed, the zipped size after.
func zipTree(root string, l limits) (zipped, error) {
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return zipped{}, err
	}
	type file struct {
		name, path string
		mode       fs.FileMode
		size       int64
	}
	var files []file
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			return fmt.Errorf("%s: a symlink to a directory cannot be packaged", rel)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: cannot package a file of type %v", rel, info.Mode().Type())
		}
		mode := fs.FileMode(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		files = append(files, file{filepath.ToSlash(rel), p, mode, info.Size()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return zipped{}, err
	}
	if total > l.unzipped {
		return zipped{}, &LimitError{What: "unzipped", Size: total, Limit: l.unzipped}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		fh := &zip.FileHeader{Name: f.name, Method: zip.Deflate, ModifiedDate: dosDate1980, ModifiedTime: dosTime0}
		fh.SetMode(f.mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return zipped{}, err
		}
		if err := copyInto(w, f.path); err != nil {
			return zipped{}, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return zipped{}, err
	}
	if n := int64(buf.Len()); n > l.zipped {
		return zipped{}, &LimitError{What: "zipped", Size: n, Limit: l.zipped}
	}
	return zipped{buf.Bytes(), total}, nil
}

func copyInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
