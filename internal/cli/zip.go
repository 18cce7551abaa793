package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flint-run/flint/internal/build"
)

// loadPackage returns the zip bytes of a deployment package: a directory, zipped in memory by
// build's zipper (the one flint build and stacks use, so the same tree gives the same
// CodeSha256 every way), or a .zip file, read as is.
func loadPackage(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	switch {
	case info.IsDir():
		b, _, err := build.ZipDir(path, build.Options{})
		if err != nil {
			return nil, err
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
