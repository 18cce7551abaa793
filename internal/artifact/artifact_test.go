package artifact

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// zent is one entry of a test zip. mode 0 means no Unix mode information, as zips made on
// Windows have; otherwise the entry is written with that mode (fs.ModeSymlink: body is the
// target).
type zent struct {
	name string
	body string
	mode fs.FileMode
}

func file(name, body string) zent   { return zent{name, body, 0o644} }
func dir(name string) zent          { return zent{name, "", fs.ModeDir | 0o755} }
func link(name, target string) zent { return zent{name, target, fs.ModeSymlink | 0o777} }

func buildZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		var w io.Writer
		var err error
		if e.mode == 0 {
			w, err = zw.Create(e.name)
		} else {
			fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
			fh.SetMode(e.mode)
			w, err = zw.CreateHeader(fh)
		}
		if err != nil {
			t.Fatalf("zip entry %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatalf("zip entry %q: %v", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// buildRaw makes a zip whose entries carry hand-written headers and already-compressed data,
// so the headers can lie.
func buildRaw(t testing.TB, fh *zip.FileHeader, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(fh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeroBomb returns a raw deflate stream of mib MiB of zeros, and its CRC-32, without
// compressing them all: the block that encodes 1 MiB of zeros after a window of zeros only
// refers back to zeros, so it can be repeated as often as wanted.
func zeroBomb(t testing.TB, mib int) ([]byte, uint32) {
	t.Helper()
	if mib < 2 {
		t.Fatalf("zeroBomb(%d): need at least 2 MiB", mib)
	}
	zeros := make([]byte, 1<<20)
	var out bytes.Buffer
	fw, err := flate.NewWriter(&out, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(zeros)
	fw.Flush()
	first := out.Len()
	fw.Write(zeros)
	fw.Flush() // sync flush: the block ends byte-aligned and is self-contained
	block := bytes.Clone(out.Bytes()[first:])
	for i := 2; i < mib; i++ {
		out.Write(block)
	}
	if err := fw.Close(); err != nil { // appends an empty final block
		t.Fatal(err)
	}
	var crc uint32
	for i := 0; i < mib; i++ {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	return out.Bytes(), crc
}

func bombZip(t testing.TB, mib int, declared uint64) []byte {
	t.Helper()
	data, crc := zeroBomb(t, mib)
	return buildRaw(t, &zip.FileHeader{
		Name:               "zeros",
		Method:             zip.Deflate,
		CRC32:              crc,
		CompressedSize64:   uint64(len(data)),
		UncompressedSize64: declared,
	}, data)
}

var sentinels = []error{
	ErrCorrupt, ErrZippedTooLarge, ErrUnzippedTooLarge, ErrUnsafePath, ErrUnsafeSymlink, ErrTooManyFiles,
}

// checkSentinel fails unless err wraps want and no other sentinel.
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one wrapping %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Errorf("error = %v, also wraps %v", err, s)
		}
	}
}

func TestZeroBombHelper(t *testing.T) {
	data, crc := zeroBomb(t, 3)
	got, err := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3<<20 || bytes.Count(got, []byte{0}) != len(got) {
		t.Fatalf("zeroBomb(3) inflates to %d bytes, want %d zeros", len(got), 3<<20)
	}
	if want := crc32.ChecksumIEEE(got); crc != want {
		t.Errorf("zeroBomb(3) crc = %08x, want %08x", crc, want)
	}
}

func TestValidateInfo(t *testing.T) {
	b := buildZip(t,
		file("index.js", "exports.handler = async () => 'hi'\n"),
		dir("lib/"),
		file("lib/util.js", strings.Repeat("x", 100000)),
		zent{"bootstrap", "#!/bin/sh\n", 0},
		link("current", "lib"),
	)
	got, err := Validate(b, DefaultLimits())
	if err != nil {
		t.Fatalf("Validate() error = %v", err)
	}
	sum := sha256.Sum256(b)
	want := Info{
		Sha256:       sum,
		CodeSha256:   base64.StdEncoding.EncodeToString(sum[:]),
		Size:         int64(len(b)),
		UnzippedSize: int64(len("exports.handler = async () => 'hi'\n") + 100000 + len("#!/bin/sh\n") + len("lib")),
		Files:        5,
	}
	if got != want {
		t.Errorf("Validate() = %+v, want %+v", got, want)
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name      string
		ents      []zent
		wantFiles int
	}{
		{"empty zip", nil, 0},
		{"one file", []zent{file("a.py", "x")}, 1},
		{"implied directories", []zent{file("a/b/c/d.txt", "x")}, 1},
		{"directory listed twice", []zent{dir("a/"), dir("a/"), file("a/x", "")}, 3},
		{"directory after its children", []zent{file("a/x", ""), dir("a/")}, 2},
		{"dot and empty components", []zent{file("./a//b/./c", "x"), file("a/b/d", "y")}, 2},
		{"root directory entry", []zent{dir("./"), file("x", "")}, 2},
		{"windows zip", []zent{zent{"bootstrap", "x", 0}, zent{"dir/", "", 0}, zent{"dir/f", "", 0}}, 3},
		{"symlink to sibling", []zent{file("lib/x.so.1", "elf"), link("lib/x.so", "x.so.1")}, 2},
		{"symlink up and down", []zent{link("bin/tool", "../lib/tool"), file("lib/tool", "")}, 2},
		{"symlink to root", []zent{link("a", ".")}, 1},
		{"symlink to dir link", []zent{link("a", "."), link("b", "a/a/a")}, 2},
		{"dangling symlink inside", []zent{link("a/b", "../missing")}, 1},
		{"symlink chain", []zent{link("x", "y"), link("y", "z/w"), file("z/w", "")}, 3},
		{"file named like a drive elsewhere", []zent{file("a/C:x", "")}, 1},
		{"dots in names", []zent{file("..a", ""), file("a..", ""), file(".../x", "")}, 3},
		{"executable", []zent{zent{"run", "x", 0o755}}, 1},
		{"symlink chain at the limit", chain(40), 41},
		{"longest names", []zent{file(strings.Repeat("a/", 2047)+"b", ""), file(strings.Repeat("x", 255), "")}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Validate(buildZip(t, tt.ents...), DefaultLimits())
			if err != nil {
				t.Fatalf("Validate() error = %v, want nil", err)
			}
			if info.Files != tt.wantFiles {
				t.Errorf("Files = %d, want %d", info.Files, tt.wantFiles)
			}
		})
	}
}

// chain returns n symlinks, each to the next, and a file at the end.
func chain(n int) []zent {
	ents := []zent{file("end", "")}
	for i := 0; i < n; i++ {
		next := fmt.Sprintf("l%d", i+1)
		if i == n-1 {
			next = "end"
		}
		ents = append(ents, link(fmt.Sprintf("l%d", i), next))
	}
	return ents
}

func TestValidateRejects(t *testing.T) {
	valid := buildZip(t, file("index.js", "x"), file("lib/a.js", strings.Repeat("a", 1000)))
	stored := func() []byte { // one stored entry whose data is flipped after zipping
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "f", Method: zip.Store})
		io.WriteString(w, "hello, world")
		zw.Close()
		b := buf.Bytes()
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		off, err := zr.File[0].DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0xff
		return b
	}()
	raw := func(fh zip.FileHeader, data string) []byte { return buildRaw(t, &fh, []byte(data)) }
	long := strings.Repeat("a/", 2500)

	tests := []struct {
		name    string
		zip     []byte
		lim     Limits
		want    error
		wantMsg string // in the error, if set
	}{
		{name: "no bytes", zip: nil, want: ErrCorrupt},
		{name: "not a zip", zip: []byte("PK\x03\x04 this is not really a zip file"), want: ErrCorrupt},
		{name: "truncated end", zip: valid[:len(valid)-10], want: ErrCorrupt},
		{name: "truncated half", zip: valid[:len(valid)/2], want: ErrCorrupt},
		{name: "flipped data", zip: stored, want: ErrCorrupt, wantMsg: `"f"`},
		{name: "unknown method", zip: raw(zip.FileHeader{Name: "f", Method: 99, CompressedSize64: 3, UncompressedSize64: 3}, "abc"), want: ErrCorrupt},
		{name: "encrypted", zip: raw(zip.FileHeader{Name: "f", Flags: 0x1, CompressedSize64: 3, UncompressedSize64: 3}, "abc"), want: ErrCorrupt, wantMsg: "encrypted"},
		{name: "directory with data", zip: bytes.ReplaceAll( // the writer refuses data for "dir/"
			raw(zip.FileHeader{Name: "dirQ", CompressedSize64: 3, UncompressedSize64: 3}, "abc"),
			[]byte("dirQ"), []byte("dir/")), want: ErrCorrupt},
		{name: "duplicate file", zip: buildZip(t, file("a", "1"), file("a", "2")), want: ErrCorrupt, wantMsg: "duplicate"},
		{name: "duplicate after cleaning", zip: buildZip(t, file("a/b", "1"), file("./a//b", "2")), want: ErrCorrupt},
		{name: "file and directory", zip: buildZip(t, file("a", "1"), dir("a/")), want: ErrCorrupt},
		{name: "file as parent", zip: buildZip(t, file("a", "1"), file("a/b", "2")), want: ErrCorrupt},

		{name: "zipped over limit", zip: valid, lim: Limits{MaxZipped: int64(len(valid)) - 1}, want: ErrZippedTooLarge},
		{name: "unzipped over limit", zip: valid, lim: Limits{MaxUnzipped: 1000}, want: ErrUnzippedTooLarge, wantMsg: "lib/a.js"},
		{name: "too many files", zip: valid, lim: Limits{MaxFiles: 1}, want: ErrTooManyFiles},
		{name: "directories count as files", zip: buildZip(t, dir("a/"), dir("b/")), lim: Limits{MaxFiles: 1}, want: ErrTooManyFiles},
		{name: "implied directories count", zip: buildZip(t, file("a/b/c/d", "")), lim: Limits{MaxFiles: 3}, want: ErrTooManyFiles},

		{name: "parent", zip: buildZip(t, file("../x", "")), want: ErrUnsafePath, wantMsg: `"../x"`},
		{name: "absolute", zip: buildZip(t, file("/etc/x", "")), want: ErrUnsafePath},
		{name: "escape after descent", zip: buildZip(t, file("a/../../x", "")), want: ErrUnsafePath},
		{name: "dotdot that stays inside", zip: buildZip(t, file("a/../b", "")), want: ErrUnsafePath},
		{name: "dot then parent", zip: buildZip(t, file("./../x", "")), want: ErrUnsafePath},
		{name: "bare parent", zip: buildZip(t, dir("../")), want: ErrUnsafePath},
		{name: "windows drive", zip: buildZip(t, file(`C:\x`, "")), want: ErrUnsafePath},
		{name: "windows drive slash", zip: buildZip(t, file("C:/x", "")), want: ErrUnsafePath},
		{name: "backslash parent", zip: buildZip(t, file(`..\x`, "")), want: ErrUnsafePath},
		{name: "backslash escape", zip: buildZip(t, file(`a\..\..\x`, "")), want: ErrUnsafePath},
		{name: "backslash absolute", zip: buildZip(t, file(`\etc\x`, "")), want: ErrUnsafePath},
		{name: "NUL", zip: buildZip(t, file("a\x00/../../x", "")), want: ErrUnsafePath},
		{name: "empty name", zip: buildZip(t, file("", "x")), want: ErrUnsafePath},
		{name: "file named dot", zip: buildZip(t, file(".", "x")), want: ErrUnsafePath},
		{name: "component too long", zip: buildZip(t, file("a/"+strings.Repeat("x", 256), "")), want: ErrUnsafePath, wantMsg: "255"},
		{name: "name too long", zip: buildZip(t, file(strings.Repeat("abcdefg/", 512)+"x", "")), want: ErrUnsafePath, wantMsg: "4096"},
		{name: "fifo", zip: buildZip(t, zent{"p", "", fs.ModeNamedPipe | 0o644}), want: ErrUnsafePath, wantMsg: "unsupported"},
		{name: "device", zip: buildZip(t, zent{"d", "", fs.ModeDevice | fs.ModeCharDevice | 0o644}), want: ErrUnsafePath},
		{name: "path through symlink to root", zip: buildZip(t, link("a", "."), file("a/x", "")), want: ErrUnsafePath, wantMsg: "through symlink"},
		{name: "path through escaping symlink", zip: buildZip(t, link("evil", "../.."), file("evil/x", "")), want: ErrUnsafePath},
		{name: "path through symlink listed later", zip: buildZip(t, file("evil/x", ""), link("evil", "/etc")), want: ErrUnsafePath, wantMsg: "entries below"},
		{name: "directory through symlink", zip: buildZip(t, link("a", "b"), dir("b/"), dir("a/c/")), want: ErrUnsafePath},

		{name: "symlink absolute", zip: buildZip(t, link("l", "/etc/passwd")), want: ErrUnsafeSymlink, wantMsg: `"l"`},
		{name: "symlink parent", zip: buildZip(t, link("l", "..")), want: ErrUnsafeSymlink},
		{name: "symlink relative escape", zip: buildZip(t, link("a/b/l", "../../../x")), want: ErrUnsafeSymlink},
		{name: "symlink down and out", zip: buildZip(t, link("l", "a/../../x")), want: ErrUnsafeSymlink},
		{name: "symlink through dir link", zip: buildZip(t, link("a", "."), link("b", "a/..")), want: ErrUnsafeSymlink},
		{name: "symlink to escaping symlink", zip: buildZip(t, link("x", "sub/y"), link("sub/y", "../..")), want: ErrUnsafeSymlink},
		{name: "symlink through nested dir link", zip: buildZip(t, link("d/up", ".."), link("e", "d/up/../x")), want: ErrUnsafeSymlink},
		{name: "symlink loop", zip: buildZip(t, link("a", "b"), link("b", "a")), want: ErrUnsafeSymlink, wantMsg: "cycle"},
		{name: "symlink chain too deep", zip: buildZip(t, chain(41)...), want: ErrUnsafeSymlink, wantMsg: "levels"},
		{name: "symlink to itself", zip: buildZip(t, link("a", "a")), want: ErrUnsafeSymlink},
		{name: "symlink empty", zip: buildZip(t, link("l", "")), want: ErrUnsafeSymlink},
		{name: "symlink backslash", zip: buildZip(t, link("l", `..\..\etc`)), want: ErrUnsafeSymlink},
		{name: "symlink NUL", zip: buildZip(t, link("l", "a\x00")), want: ErrUnsafeSymlink},
		{name: "symlink target too long", zip: buildZip(t, link("l", long)), want: ErrUnsafeSymlink, wantMsg: "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Validate(tt.zip, tt.lim)
			checkSentinel(t, err, tt.want)
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to mention %s", err, tt.wantMsg)
			}
			if info != (Info{}) {
				t.Errorf("Info = %+v on error, want zero", info)
			}
		})
	}
}

func TestValidateLimitBoundaries(t *testing.T) {
	b := buildZip(t, file("a", strings.Repeat("a", 600)), file("b", strings.Repeat("b", 400)), dir("c/"))
	tests := []struct {
		name string
		lim  Limits
		want error
	}{
		{"defaults", Limits{}, nil},
		{"zipped exactly", Limits{MaxZipped: int64(len(b))}, nil},
		{"zipped one over", Limits{MaxZipped: int64(len(b)) - 1}, ErrZippedTooLarge},
		{"unzipped exactly", Limits{MaxUnzipped: 1000}, nil},
		{"unzipped one over", Limits{MaxUnzipped: 999}, ErrUnzippedTooLarge},
		{"unzipped within first entry", Limits{MaxUnzipped: 10}, ErrUnzippedTooLarge},
		{"files exactly", Limits{MaxFiles: 3}, nil},
		{"files one over", Limits{MaxFiles: 2}, ErrTooManyFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Validate(b, tt.lim)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() error = %v, want nil", err)
				}
				return
			}
			checkSentinel(t, err, tt.want)
		})
	}
}

// TestValidateZipBombs checks that decompressed bytes are counted as they come and never taken
// from headers. Each bomb inflates to far more than the limit; each is stopped at the limit.
func TestValidateZipBombs(t *testing.T) {
	lim := Limits{MaxUnzipped: 10 << 20}
	spread := func() []byte { // many honest entries, each under the limit, over it in total
		data, crc := zeroBomb(t, 2)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i := 0; i < 20; i++ {
			w, err := zw.CreateRaw(&zip.FileHeader{
				Name: "part" + string(rune('a'+i)), Method: zip.Deflate, CRC32: crc,
				CompressedSize64: uint64(len(data)), UncompressedSize64: 2 << 20,
			})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
		}
		zw.Close()
		return buf.Bytes()
	}()
	tests := []struct {
		name    string
		zip     []byte
		want    error
		wantMsg string
	}{
		// 300 MiB of zeros, honestly declared.
		{"honest bomb", bombZip(t, 300, 300<<20), ErrUnzippedTooLarge, "10485760"},
		// The header claims 1 KiB; archive/zip notices the lie at the first read past it.
		{"header claims small", bombZip(t, 300, 1<<10), ErrCorrupt, ""},
		// The header claims more than the limit but the data is small: headers don't decide.
		{"header claims large", bombZip(t, 2, 20<<20), ErrCorrupt, ""},
		{"spread over entries", spread, ErrUnzippedTooLarge, `"partf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.zip) > 1<<20 {
				t.Fatalf("bomb is %d bytes zipped, want under 1 MiB", len(tt.zip))
			}
			start := time.Now()
			_, err := Validate(tt.zip, lim)
			t.Logf("%d zipped bytes rejected in %v: %v", len(tt.zip), time.Since(start), err)
			checkSentinel(t, err, tt.want)
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to mention %s", err, tt.wantMsg)
			}
		})
	}
}

// TestValidateInsecurePathGodebug checks that archive/zip's own check (GODEBUG
// zipinsecurepath=0) does not turn an unsafe name into ErrCorrupt.
func TestValidateInsecurePathGodebug(t *testing.T) {
	t.Setenv("GODEBUG", "zipinsecurepath=0")
	b := buildZip(t, file("../x", ""))
	if _, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); !errors.Is(err, zip.ErrInsecurePath) {
		t.Fatalf("zip.NewReader() error = %v, want ErrInsecurePath (GODEBUG not in effect)", err)
	}
	_, err := Validate(b, DefaultLimits())
	checkSentinel(t, err, ErrUnsafePath)
}

func TestLimitsOrDefault(t *testing.T) {
	if got, want := (Limits{}).orDefault(), DefaultLimits(); got != want {
		t.Errorf("Limits{}.orDefault() = %+v, want %+v", got, want)
	}
	if got, want := (Limits{MaxZipped: -1, MaxUnzipped: 5, MaxFiles: 7}).orDefault(),
		(Limits{MaxZipped: 52428800, MaxUnzipped: 5, MaxFiles: 7}); got != want {
		t.Errorf("orDefault() = %+v, want %+v", got, want)
	}
}

func TestValidateAllocations(t *testing.T) {
	small := buildZip(t, file("a", "x"))
	big := buildZip(t, file("a", strings.Repeat("x", 4<<20)))
	lim := DefaultLimits()
	allocs := func(b []byte) float64 {
		return testing.AllocsPerRun(3, func() {
			if _, err := Validate(b, lim); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Decompression state may allocate a little per read; per byte would be millions.
	if s, b := allocs(small), allocs(big); b > s+100 {
		t.Errorf("Validate allocates %v times for 4 MiB against %v for 1 byte", b, s)
	}
}

// TestValidateScales feeds Validate packages built to make naive checks quadratic: names as
// deep as allowed, many of them, and long symlink chains through deep directories. They must be
// checked (or rejected) in time linear in their size.
func TestValidateScales(t *testing.T) {
	deep := strings.Repeat("d/", 1000)
	var many []zent
	for i := 0; i < 500; i++ {
		many = append(many, file(fmt.Sprintf("x%d/", i)+deep+"f", ""))
	}
	var links []zent
	up, down := strings.Repeat("../", 500), strings.Repeat("d/", 500)
	for i := 0; i < 500; i++ {
		// Each link climbs the whole tree and comes back down, through the previous link.
		target := up + "d"
		if i > 0 {
			target = up + down + fmt.Sprintf("l%d", i-1)
		}
		links = append(links, link(down+fmt.Sprintf("l%d", i), target))
	}
	tests := []struct {
		name string
		ents []zent
		want error
	}{
		{"deep names imply too many directories", many, ErrTooManyFiles},
		{"deep symlinks", links, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := buildZip(t, tt.ents...)
			start := time.Now()
			_, err := Validate(b, Limits{MaxZipped: 1 << 30, MaxUnzipped: 1 << 30})
			t.Logf("%d zipped bytes checked in %v", len(b), time.Since(start))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() error = %v, want nil", err)
				}
				return
			}
			checkSentinel(t, err, tt.want)
		})
	}
}
