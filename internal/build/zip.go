package build

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/flint-run/flint/internal/artifact"
)

// MS-DOS date and time of 1980-01-01 00:00:00, the zip format's epoch: every entry's timestamp.
// They are set directly (not through FileHeader.Modified) so that archive/zip writes no
// extended-timestamp extra field.
const (
	dosDate1980 = 1<<5 | 1 // year 0 (1980), month 1, day 1
	dosTime0    = 0
)

// Modes of the entries the zipper writes: file permissions are normalised to these two, as
// Flint (and git) keep only whether a file is executable.
const (
	modeFile       fs.FileMode = 0o644
	modeExecutable fs.FileMode = 0o755
	modeDir                    = fs.ModeDir | 0o755
	modeSymlink                = fs.ModeSymlink | 0o777
)

type zipped struct {
	zip      []byte
	unzipped int64
}

// ZipDir zips the tree under dir as it is, with nothing pruned but .git: for ready packages
// (flint deploy DIR, flint build of a directory with a bootstrap, stacks) and layers. It
// returns the zip and the unzipped size (files plus symlink targets). See the package comment
// for the format.
func ZipDir(dir string, opts Options) ([]byte, int64, error) {
	z, err := zipTree(dir, opts.limits())
	if err != nil {
		return nil, 0, fmt.Errorf("zip %s: %w", dir, err)
	}
	return z.zip, z.unzipped, nil
}

// pkgEntry is one entry of a package: a regular file, a directory or a symlink.
type pkgEntry struct {
	name   string // slash-separated, relative; a directory's ends in "/"
	path   string // on disk; regular files only
	mode   fs.FileMode
	size   int64  // regular files only
	target string // symlinks only
}

// zipTree zips the tree under root: the one zipper behind every package Flint makes (the
// package comment has the rules). The entries are checked with the server's own rules
// (artifact's) and the unzipped size against l before anything is compressed, the zipped
// size after.
func zipTree(root string, l limits) (zipped, error) {
	// A root given as a symlink is the directory it points to.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return zipped{}, err
	}
	var ents []pkgEntry
	var total int64
	// WalkDir does not follow symlinks: a link is one entry, whatever it points to.
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
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch m := info.Mode(); {
		case m.IsDir():
			ents = append(ents, pkgEntry{name: rel + "/", mode: modeDir})
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			target = filepath.ToSlash(target)
			ents = append(ents, pkgEntry{name: rel, mode: modeSymlink, target: target})
			total += int64(len(target))
		case m.IsRegular():
			mode := modeFile
			if m&0o111 != 0 {
				mode = modeExecutable
			}
			ents = append(ents, pkgEntry{name: rel, path: p, mode: mode, size: info.Size()})
			total += info.Size()
		default:
			return fmt.Errorf("%s: cannot package a file of type %v: a package holds only files, directories and symlinks", rel, m.Type())
		}
		return nil
	})
	if err != nil {
		return zipped{}, err
	}
	if total > l.unzipped {
		return zipped{}, &LimitError{What: "unzipped", Size: total, Limit: l.unzipped}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	if err := checkEntries(ents); err != nil {
		return zipped{}, err
	}

	var buf bytes.Buffer
	if err := writeZip(&buf, ents, false); err != nil {
		return zipped{}, err
	}
	if n := int64(buf.Len()); n > l.zipped {
		return zipped{}, &LimitError{What: "zipped", Size: n, Limit: l.zipped}
	}
	return zipped{buf.Bytes(), total}, nil
}

// checkEntries refuses what the server would refuse (names, symlinks leaving the package or
// looping, too many entries), by the server's own rules: artifact.Validate on a zip of the same
// entries without their files' data, which costs nothing next to compressing them.
func checkEntries(ents []pkgEntry) error {
	var skel bytes.Buffer
	if err := writeZip(&skel, ents, true); err != nil {
		return err
	}
	_, err := artifact.Validate(skel.Bytes(), artifact.Limits{MaxZipped: 1 << 62, MaxUnzipped: 1 << 62})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, artifact.ErrUnsafeSymlink):
		return fmt.Errorf("%w (a symlink in a package must be relative and lead to a place inside it: "+
			"replace the link with the file it points to, or point it inside the directory)", err)
	}
	return err
}

// writeZip writes ents, in their order, as a zip; without data, files are written empty.
func writeZip(w io.Writer, ents []pkgEntry, withoutData bool) error {
	zw := zip.NewWriter(w)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Store, ModifiedDate: dosDate1980, ModifiedTime: dosTime0}
		fh.SetMode(e.mode)
		if e.mode.IsRegular() && !withoutData {
			fh.Method = zip.Deflate
		}
		fw, err := zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		switch {
		case e.mode&fs.ModeSymlink != 0:
			_, err = io.WriteString(fw, e.target)
		case e.mode.IsRegular() && !withoutData:
			err = copyInto(fw, e.path)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return zw.Close()
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
