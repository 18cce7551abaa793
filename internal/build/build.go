package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Lambda's deployment package limits.
const (
	// MaxZipped is the largest ZIP Lambda accepts in a direct upload.
	MaxZipped = 50 << 20
	// MaxUnzipped is the largest a function's unpacked code (with its layers) may be.
	MaxUnzipped = 250 << 20
)

// Languages Build recognises.
const (
	Go     = "go"
	Python = "python"
	Node   = "node"
)

// Default runtimes per language.
const (
	GoRuntime     = "provided.al2023"
	PythonRuntime = "python3.12"
	NodeRuntime   = "nodejs20.x"
)

// ErrUnknownLanguage means Build found nothing it knows how to build in a directory.
var ErrUnknownLanguage = errors.New("no Go, Python or Node.js sources found")

// LimitError is a package over one of Lambda's size limits.
type LimitError struct {
	What  string // "zipped" or "unzipped"
	Size  int64
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("package is %s %s, over Lambda's %s limit of %s",
		FormatSize(e.Size), e.What, e.What, FormatSize(e.Limit))
}

// Options tunes a build. The zero value builds for x86_64 with the tools found on PATH.
type Options struct {
	// Arch is "x86_64" (default) or "arm64": the GOARCH of Go builds.
	Arch string
	// Go is the go command; default "go" on PATH, else the one this program was built with.
	Go string
	// Python is the interpreter whose pip installs requirements; default /usr/bin/python3, the
	// host's own, else python3 on PATH.
	Python string
	// NPM is the npm command; default "npm" on PATH.
	NPM string
	// Log receives the tools' output; nil discards it (it is still quoted in errors).
	Log io.Writer
	// MaxZipped and MaxUnzipped override Lambda's limits (tests); 0 means Lambda's.
	MaxZipped, MaxUnzipped int64
}

// Result is a built package.
type Result struct {
	Zip      []byte
	Language string // Go, Python or Node
	Runtime  string // the runtime the package is built for, e.g. provided.al2023
	Handler  string // the handler found in the sources, or "" when Build cannot tell
	// Handlers is every FILE.NAME the conventional handler files define (lambda_function.py,
	// app.py, index.mjs …): when Handler is "", what to tell the user to choose from.
	Handlers   []string
	Size       int64  // len(Zip)
	Unzipped   int64  // total size of the files in Zip
	CodeSha256 string // base64 SHA-256 of Zip, as Lambda reports it
}

// Detect returns the language of the sources in dir, or ErrUnknownLanguage.
func Detect(dir string) (string, error) {
	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	switch {
	case has("go.mod"):
		return Go, nil
	case hasGoMain(dir):
		return Go, nil
	case has("requirements.txt") || hasExt(dir, ".py"):
		return Python, nil
	case has("package.json") || hasExt(dir, ".js", ".mjs", ".cjs"):
		return Node, nil
	}
	return "", fmt.Errorf("%s: %w", dir, ErrUnknownLanguage)
}

// IsReady reports whether dir is a ready package, zipped as it is and never built: a directory
// with a bootstrap at its root.
func IsReady(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "bootstrap"))
	return err == nil
}

// IsSource reports whether dir holds sources Build should build, as opposed to a ready package
// (IsReady) or a directory with nothing Build knows, which are deployed as they are.
func IsSource(dir string) bool {
	if IsReady(dir) {
		return false
	}
	_, err := Detect(dir)
	return err == nil
}

// Zip packages dir as it is (ZipDir) into a Result with no language, runtime or handler: what
// flint build makes of a ready package.
func Zip(dir string, opts Options) (*Result, error) {
	b, unzipped, err := ZipDir(dir, opts)
	if err != nil {
		return nil, err
	}
	return &Result{Zip: b, Size: int64(len(b)), Unzipped: unzipped, CodeSha256: Sha256(b)}, nil
}

// Build builds the sources in dir into a deployment package.
func Build(ctx context.Context, dir string, opts Options) (*Result, error) {
	lang, err := Detect(dir)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp("", "flint-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	b := &builder{dir: dir, stage: stage, opts: opts}
	res := &Result{Language: lang}
	switch lang {
	case Go:
		res.Runtime, res.Handler = GoRuntime, "bootstrap"
		err = b.golang(ctx)
	case Python:
		res.Runtime = PythonRuntime
		res.Handler, res.Handlers = findHandlers(dir, Python)
		err = b.python(ctx)
	case Node:
		res.Runtime = NodeRuntime
		res.Handler, res.Handlers = findHandlers(dir, Node)
		err = b.node(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s (%s): %w", dir, lang, err)
	}
	z, err := zipTree(stage, opts.limits())
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", dir, err)
	}
	res.Zip, res.Size, res.Unzipped, res.CodeSha256 = z.zip, int64(len(z.zip)), z.unzipped, Sha256(z.zip)
	return res, nil
}

// Sha256 is the base64 SHA-256 of b, the form of Lambda's CodeSha256.
func Sha256(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// FormatSize renders n bytes for people: "512 B", "3.4 KB", "48.0 MB".
func FormatSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
}

type limits struct{ zipped, unzipped int64 }

func (o Options) limits() limits {
	l := limits{MaxZipped, MaxUnzipped}
	if o.MaxZipped > 0 {
		l.zipped = o.MaxZipped
	}
	if o.MaxUnzipped > 0 {
		l.unzipped = o.MaxUnzipped
	}
	return l
}

type builder struct {
	dir, stage string
	opts       Options
}

// golang builds the main package in dir as a static linux binary named bootstrap.
func (b *builder) golang(ctx context.Context) error {
	goCmd := b.opts.Go
	if goCmd == "" {
		goCmd = "go"
		if _, err := exec.LookPath(goCmd); err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
	}
	arch := "amd64"
	switch b.opts.Arch {
	case "", "x86_64":
	case "arm64":
		arch = "arm64"
	default:
		return fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", b.opts.Arch)
	}
	out := filepath.Join(b.stage, "bootstrap")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=",
		"-tags", "lambda.norpc", "-o", out, ".")
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
	return b.run(cmd)
}

// python copies the sources and installs requirements.txt into the package.
func (b *builder) python(ctx context.Context) error {
	wheels := filepath.Join(b.dir, "wheels")
	if err := copyTree(b.dir, b.stage, func(rel string, d fs.DirEntry) bool {
		return rel == "wheels" || prunePython(rel, d)
	}); err != nil {
		return err
	}
	reqs, err := requirements(filepath.Join(b.dir, "requirements.txt"))
	if err != nil {
		return err
	}
	if len(reqs) > 0 {
		python := b.opts.Python
		if python == "" {
			python = "/usr/bin/python3"
			if _, err := os.Stat(python); err != nil {
				python = "python3"
			}
		}
		args := []string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile",
			"--no-warn-script-location", "--target", b.stage, "-r", filepath.Join(b.dir, "requirements.txt")}
		offline := false
		if fi, err := os.Stat(wheels); err == nil && fi.IsDir() {
			args = append(args, "--no-index", "--find-links", wheels)
			offline = true
		} else {
			args = append(args, "--retries", "1", "--timeout", "15")
		}
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "PIP_NO_CACHE_DIR=1", "PYTHONDONTWRITEBYTECODE=1", "SOURCE_DATE_EPOCH=315532800")
		if err := b.run(cmd); err != nil {
			where := "pip could not reach a package index to install"
			if offline {
				where = "pip could not find in " + wheels + " wheels for"
			}
			hint := "; put their wheels in " + wheels + " to build offline"
			if offline {
				hint = "; add their wheels (and their dependencies') there"
			}
			return fmt.Errorf("%s %s (requirements.txt)%s: %w", where, strings.Join(reqs, ", "), hint, err)
		}
	}
	return pruneTree(b.stage, prunePython)
}

// node copies the sources and installs package.json's production dependencies.
func (b *builder) node(ctx context.Context) error {
	if err := copyTree(b.dir, b.stage, func(rel string, d fs.DirEntry) bool {
		return rel == "node_modules" || pruneNode(rel, d)
	}); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(b.dir, "package.json")); err == nil {
		npm := b.opts.NPM
		if npm == "" {
			npm = "npm"
		}
		args := []string{"install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock"}
		if _, err := os.Stat(filepath.Join(b.dir, "package-lock.json")); err == nil {
			args = []string{"ci", "--omit=dev", "--no-audit", "--no-fund"}
		}
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = b.stage
		cmd.Env = append(os.Environ(), "NODE_ENV=production", "npm_config_update_notifier=false")
		if err := b.run(cmd); err != nil {
			return fmt.Errorf("npm %s: %w", args[0], err)
		}
	}
	return pruneTree(b.stage, pruneNode)
}

// run runs cmd, copying its output to the log; a failure carries the output's last lines.
func (b *builder) run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	var w io.Writer = &out
	if b.opts.Log != nil {
		w = io.MultiWriter(&out, b.opts.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, tail(out.String(), 12))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// prunePython says whether rel (slash-separated, relative to the package root) is left out of a
// Python package: byte code, tests and packaging metadata.
func prunePython(rel string, d fs.DirEntry) bool {
	name := d.Name()
	if pruneCommon(name) {
		return true
	}
	if d.IsDir() {
		return name == "__pycache__" || name == "tests" || name == "test" && strings.Contains(rel, "/") ||
			strings.HasSuffix(name, ".dist-info") || strings.HasSuffix(name, ".egg-info")
	}
	return strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, ".pyo")
}

// pruneNode says whether rel is left out of a Node.js package: executables' links, tests,
// documentation.
func pruneNode(rel string, d fs.DirEntry) bool {
	name := d.Name()
	if pruneCommon(name) {
		return true
	}
	if d.IsDir() {
		return name == ".bin" || name == "tests" || name == "test" || name == "__tests__"
	}
	return strings.HasSuffix(strings.ToLower(name), ".md") || name == ".package-lock.json"
}

func pruneCommon(name string) bool {
	return name == ".git" || name == ".DS_Store" || name == ".venv" || name == ".flint"
}

// copyTree copies the regular files and directories under src to dst, leaving out what skip
// says; a symlink is copied as the file it points to.
func copyTree(src, dst string, skip func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := os.Stat(p) // follows a symlink
		if err != nil {
			return err
		}
		if info.IsDir() {
			return fmt.Errorf("%s: a symlink to a directory cannot be packaged", rel)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: cannot package a file of type %v", rel, info.Mode().Type())
		}
		return copyFile(p, target, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// pruneTree removes what prune says from the tree under root.
func pruneTree(root string, prune func(rel string, d fs.DirEntry) bool) error {
	var gone []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		if prune(filepath.ToSlash(rel), d) {
			gone = append(gone, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range gone {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// requirements returns the names of the packages requirements.txt asks for; none when it is
// absent or has only comments and blank lines.
func requirements(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-") { // an option such as -r other.txt or --index-url
			names = append(names, line)
			continue
		}
		name := line
		if i := strings.IndexAny(name, "<>=!~;[ @"); i > 0 {
			name = name[:i]
		}
		names = append(names, name)
	}
	return names, sc.Err()
}

// The files Build looks for handlers in, in Lambda's and the frameworks' conventions.
var (
	pythonHandlerFiles = []string{"lambda_function.py", "app.py", "handler.py", "main.py", "index.py"}
	nodeHandlerFiles   = []string{"index.mjs", "index.js", "index.cjs", "app.mjs", "app.js", "app.cjs",
		"handler.mjs", "handler.js", "handler.cjs"}
)

// What a handler is in each language, read from the source text. Only what the runtime can
// reach as FILE.NAME counts: a Python function or handler assignment at the module's top level
// (column 0), a Node export. Mentions in comments, strings or nested code do not.
var (
	pyDef = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?m)^(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(`)
	})
	pyAssign    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^((?:lambda_)?handler)[ \t]*=[^=]`) })
	jsExportsAs = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?m)^[ \t]*(?:module\.)?exports\.([A-Za-z_$][\w$]*)[ \t]*=[^=]`)
	})
	jsExportDecl = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?m)^[ \t]*export[ \t]+(?:(?:const|let|var)[ \t]+([A-Za-z_$][\w$]*)|(?:async[ \t]+)?function[ \t]*\*?[ \t]*([A-Za-z_$][\w$]*))`)
	})
	jsExportList = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^[ \t]*export[ \t]*\{([^}]*)\}`) })
	jsModuleObj  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^[ \t]*module\.exports[ \t]*=[ \t]*\{`) })
	jsObjKey     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:async[ \t]+)?\*?[ \t]*([A-Za-z_$][\w$]*)`) })
)

// findHandlers returns every FILE.NAME handler the conventional files in dir define, in file
// order, and the one to use: the only one found, else the only one named handler or
// lambda_handler, else "" (the caller must be told which to pick).
func findHandlers(dir, lang string) (handler string, found []string) {
	files := pythonHandlerFiles
	if lang == Node {
		files = nodeHandlerFiles
	}
	var named []string
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		module := strings.TrimSuffix(file, filepath.Ext(file))
		var names []string
		if lang == Node {
			names = nodeExports(string(b))
		} else {
			names = pythonFunctions(string(b))
		}
		for _, n := range names {
			h := module + "." + n
			if slices.Contains(found, h) {
				continue
			}
			found = append(found, h)
			if n == "handler" || n == "lambda_handler" {
				named = append(named, h)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], found
	case len(named) == 1:
		return named[0], found
	}
	return "", found
}

// pythonFunctions returns the names a module defines at its top level that Lambda could call.
func pythonFunctions(src string) []string {
	var names []string
	for _, m := range pyDef().FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	for _, m := range pyAssign().FindAllStringSubmatch(src, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// nodeExports returns the names a CommonJS or ES module exports.
func nodeExports(src string) []string {
	var names []string
	add := func(n string) {
		if n != "" && n != "default" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, m := range jsExportsAs().FindAllStringSubmatch(src, -1) {
		add(m[1])
	}
	for _, m := range jsExportDecl().FindAllStringSubmatch(src, -1) {
		add(m[1] + m[2])
	}
	for _, m := range jsExportList().FindAllStringSubmatch(src, -1) {
		for _, item := range strings.Split(m[1], ",") {
			f := strings.Fields(item) // "a", or "a as b"
			switch {
			case len(f) == 1:
				add(f[0])
			case len(f) == 3 && f[1] == "as":
				add(f[2])
			}
		}
	}
	for _, loc := range jsModuleObj().FindAllStringIndex(src, -1) {
		for _, item := range topLevelItems(src[loc[1]:]) {
			if k := jsObjKey().FindStringSubmatch(strings.TrimSpace(item)); k != nil {
				add(k[1])
			}
		}
	}
	return names
}

// topLevelItems splits an object literal's body (src starts after its "{") at the commas of its
// own level, up to its closing "}": a method's body or a nested object stays inside its item.
func topLevelItems(src string) []string {
	var items []string
	depth, start := 0, 0
	for i, c := range src {
		switch c {
		case '{', '(', '[':
			depth++
		case ')', ']':
			depth--
		case '}':
			if depth == 0 {
				return append(items, src[start:i])
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, src[start:i])
				start = i + 1
			}
		}
	}
	return items
}

func hasGoMain(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		b, err := os.ReadFile(m)
		if err == nil && bytes.Contains(b, []byte("package main")) {
			return true
		}
	}
	return false
}

func hasExt(dir string, exts ...string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		for _, x := range exts {
			if !e.IsDir() && strings.HasSuffix(e.Name(), x) {
				return true
			}
		}
	}
	return false
}
