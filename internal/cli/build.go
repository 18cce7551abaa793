package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/build"
)

func (a *app) buildCommand() *cobra.Command {
	var out, arch string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "build DIR [-o OUT.zip]",
		Short: "Build a function's sources into a reproducible deployment package",
		Long: "Detect the language of the sources in DIR and build a pruned, reproducible .zip (a ready\n" +
			"DIR, one with a bootstrap at its root, is zipped as it is, as flint deploy DIR and stacks do):\n" +
			"  Go      go.mod or package main: go build for linux (CGO_ENABLED=0, -trimpath), zipped as bootstrap\n" +
			"  Python  requirements.txt or *.py: sources plus pip install -r requirements.txt (offline from\n" +
			"          DIR/wheels when it exists); __pycache__, *.pyc, tests, *.dist-info pruned\n" +
			"  Node    package.json or *.js/*.mjs: sources plus npm ci --omit=dev (npm install without a\n" +
			"          lock file); .bin, tests and *.md pruned\n\n" +
			"The same sources always give the same bytes and CodeSha256, through flint build, flint deploy\n" +
			"DIR or a stack: entries sorted, directories kept (empty ones too), files 0755 when executable\n" +
			"and 0644 otherwise, times 1980-01-01, .git left out, symlinks kept as links. A symlink that is\n" +
			"absolute or leads out of the directory is an error naming it (Flint refuses such packages).\n" +
			"The package is checked against Lambda's limits (50 MB zipped, 250 MB unzipped). Prints one\n" +
			"line: path, size, CodeSha256.",
		Example: "  flint build examples/go-echo -o go-echo.zip\n  flint deploy go-echo.zip --name go-echo --runtime provided.al2023",
		Args:    exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if out == "" {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return err
				}
				out = filepath.Base(abs) + ".zip"
			}
			opts := build.Options{Arch: arch}
			if verbose {
				opts.Log = a.stderr
			}
			var res *build.Result
			var err error
			if build.IsReady(dir) {
				res, err = build.Zip(dir, opts)
			} else {
				res, err = build.Build(cmd.Context(), dir, opts)
			}
			if err != nil {
				return err
			}
			what := "ready package"
			if res.Language != "" {
				what = strings.Join([]string{res.Runtime, res.Handler}, " ")
			}
			if err := os.WriteFile(out, res.Zip, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s (%s unzipped; %s) CodeSha256 %s\n", out, build.FormatSize(res.Size),
				build.FormatSize(res.Unzipped), what, res.CodeSha256)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "where to write the .zip (default DIR's name + .zip in the current directory)")
	f.StringVar(&arch, "arch", "x86_64", "architecture for Go builds: x86_64 or arm64")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the build tools' output")
	return cmd
}

// sourcePackage returns the package for deploy's PATH: a source directory is built (and the
// runtime and handler it implies fill in o's when unset); a ready directory (one with a bootstrap,
// or with no sources Flint recognises) is zipped as is, and a .zip is read as is.
func (a *app) sourcePackage(cmd *cobra.Command, path string, o *deployOptions) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil || !info.IsDir() || !build.IsSource(path) {
		return loadPackage(path)
	}
	res, err := build.Build(cmd.Context(), path, build.Options{})
	if err != nil {
		return nil, err
	}
	if o.runtime == "" {
		o.runtime = res.Runtime
	}
	if o.handler == "" {
		o.handler = res.Handler
		o.found = res.Handlers
	}
	fmt.Fprintf(a.stderr, "built %s: %s, %s zipped, %s unzipped, CodeSha256 %s\n", path, res.Language,
		build.FormatSize(res.Size), build.FormatSize(res.Unzipped), res.CodeSha256)
	return res.Zip, nil
}
