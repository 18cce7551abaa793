package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// codeState is what Flint keeps of code: the unpacked (and merged) directories under DATA/code
// and the objects of the code bucket.
type codeState struct {
	dirs, objects []string
}

func readCodeState(t *testing.T, s *server.Server, dataDir string) codeState {
	t.Helper()
	st, err := tryCodeState(s, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tryCodeState reads the code state, each read bounded: a listing of the code bucket was seen
// to hang until its context ended on a loaded machine (waitCodeState then reads again).
func tryCodeState(s *server.Server, dataDir string) (codeState, error) {
	var st codeState
	ents, err := os.ReadDir(filepath.Join(dataDir, "code"))
	if err != nil {
		return st, err
	}
	for _, e := range ents {
		st.dirs = append(st.dirs, e.Name())
	}
	// Flint's own (in-process) connection: outside NATS clients cannot reach the object store.
	js := s.JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, "flint_code")
	if err != nil {
		return st, err
	}
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return st, err
	}
	for _, in := range infos {
		st.objects = append(st.objects, in.Name)
	}
	slices.Sort(st.dirs)
	slices.Sort(st.objects)
	return st, nil
}

func (a codeState) equal(b codeState) bool {
	return slices.Equal(a.dirs, b.dirs) && slices.Equal(a.objects, b.objects)
}

func codeKey(zip []byte) string {
	h := sha256.Sum256(zip)
	return hex.EncodeToString(h[:])
}

// waitCodeState waits until the code state satisfies ok (the collector runs in the background).
func waitCodeState(t *testing.T, s *server.Server, dataDir string, what string, ok func(codeState) bool) {
	t.Helper()
	var st codeState
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err = tryCodeState(s, dataDir); err == nil && ok(st) {
			return
		}
	}
	t.Errorf("%s: code state %+v (last read: %v)", what, st, err)
}

func startCodeServer(t *testing.T, dir string) *server.Server {
	return startServer(t, dir, func(c *config.Config) {
		c.CodeGrace = 0 // collect as soon as nothing references
	})
}

// TestRefusedCodeRequestsLeaveNothing: a refused CreateFunction, UpdateFunctionCode or
// PublishLayerVersion leaves no unpacked directory and no stored object, before and after a
// restart; code nothing references any more (a deleted function's, a replaced package, a
// leftover of an older Flint) is collected, and code something references never is.
func TestRefusedCodeRequestsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	s := startCodeServer(t, dir)
	c := newClient(s.URL())
	ctx := context.Background()
	pyZip := func(v string) []byte {
		return mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return '" + v + "'\n"}})
	}
	codeA := pyZip("a")
	createFunction(t, c, "f", "python3.12", "app.handler", codeA)
	clean := readCodeState(t, s, dir)
	if !slices.Contains(clean.dirs, codeKey(codeA)) || !slices.Contains(clean.objects, codeKey(codeA)) {
		t.Fatalf("the function's code is not stored: %+v", clean)
	}

	refusals := []struct {
		name string
		call func() error
		want string
	}{
		{"create: name taken, new code", func() error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimePython312,
				Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: pyZip("b")}})
			return err
		}, "ResourceConflictException"},
		{"create: name taken, same code", func() error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimePython312,
				Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: codeA}})
			return err
		}, "ResourceConflictException"},
		{"create: unsafe zip", func() error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("g"), Runtime: types.RuntimePython312,
				Handler: aws.String("app.handler"), Role: aws.String(role),
				Code: &types.FunctionCode{ZipFile: mustZip(t, map[string]zipEntry{"../x": {body: "x"}})}})
			return err
		}, "InvalidParameterValueException"},
		{"create: bad handler", func() error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("g"), Runtime: types.RuntimePython312,
				Handler: aws.String(strings.Repeat("h", 200)), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: pyZip("c")}})
			return err
		}, "ValidationException"},
		{"update code: stale revision", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: pyZip("d"),
				RevisionId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		}, "PreconditionFailedException"},
		{"update code: bad architecture", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: pyZip("e"),
				Architectures: []types.Architecture{"sparc"}})
			return err
		}, "ValidationException"},
		{"update code: missing function", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("nope"), ZipFile: pyZip("f")})
			return err
		}, "ResourceNotFoundException"},
		{"publish layer: unsafe link", func() error {
			_, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("l"),
				Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"x": {body: "../..", symlink: true}})}})
			return err
		}, "InvalidParameterValueException"},
	}
	for _, r := range refusals {
		if err := r.call(); apiErrorCode(err) != r.want {
			t.Errorf("%s: %v, want %s", r.name, err, r.want)
		}
		if st := readCodeState(t, s, dir); !st.equal(clean) {
			t.Errorf("%s left code behind: %+v, want %+v", r.name, st, clean)
		}
	}

	// An older Flint's leak: a package stored and unpacked that nothing references.
	leaked := pyZip("leaked")
	plantCode(t, s, dir, leaked)

	s.Close()
	s = startCodeServer(t, dir)
	c = newClient(s.URL())
	waitCodeState(t, s, dir, "after a restart", func(st codeState) bool { return st.equal(clean) })
	if out := invoke(t, c, "f", `{}`); string(out.Payload) != `"a"` {
		t.Errorf("after a restart f = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}

	// Replaced code goes, unless a version still uses it; deleting the version lets it go.
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	codeB, codeC := pyZip("b"), pyZip("c")
	for _, code := range [][]byte{codeB, codeC} {
		if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: code}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{codeKey(codeA), codeKey(codeC)}
	slices.Sort(want)
	waitCodeState(t, s, dir, "after replacing the code twice (version 1 keeps A)", func(st codeState) bool {
		return slices.Equal(st.objects, want) && slices.Equal(st.dirs, want)
	})
	if out := invoke(t, c, "f", `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("1") }); string(out.Payload) != `"a"` {
		t.Errorf("version 1 = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	waitCodeState(t, s, dir, "after deleting version 1", func(st codeState) bool {
		return slices.Equal(st.objects, []string{codeKey(codeC)}) && slices.Equal(st.dirs, []string{codeKey(codeC)})
	})

	// Shared code stays while one function still uses it.
	createFunction(t, c, "g", "python3.12", "app.handler", codeC)
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a collection would have run by now
	if st := readCodeState(t, s, dir); !slices.Equal(st.objects, []string{codeKey(codeC)}) {
		t.Errorf("code shared with g was collected: %+v", st)
	}
	if out := invoke(t, c, "g", `{}`); string(out.Payload) != `"c"` {
		t.Errorf("g = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	waitCodeState(t, s, dir, "after deleting every function", func(st codeState) bool {
		return len(st.objects) == 0 && len(st.dirs) == 0
	})
}

// plantCode stores and unpacks a package behind Flint's back, as a refused request of an older
// Flint left it.
func plantCode(t *testing.T, s *server.Server, dataDir string, zip []byte) {
	t.Helper()
	js := s.JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, "flint_code")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, codeKey(zip), zip); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dataDir, "code", codeKey(zip))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "app.py"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLayerLinksCheckedTogether: each layer's links stay inside it, but laid over each other in
// /opt one leads out ("esc" -> "s/s/../.." with "s" -> "."); Flint refuses the combination when
// it is configured, in either order, and leaves the function as it was.
func TestLayerLinksCheckedTogether(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c := newClient(s.URL())
	ctx := context.Background()
	publish := func(name string, files map[string]zipEntry) string {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
			Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, files)}})
		if err != nil {
			t.Fatalf("layer %s on its own: %v", name, err)
		}
		return aws.ToString(out.LayerVersionArn)
	}
	esc := publish("esc", map[string]zipEntry{"esc": {body: "s/s/../..", symlink: true}, "python/m.py": {body: "X = 1\n"}})
	dot := publish("dot", map[string]zipEntry{"s": {body: ".", symlink: true}})
	deep := publish("deep", map[string]zipEntry{"python/up": {body: "../x/y/../..", symlink: true}})
	dots := publish("dots", map[string]zipEntry{"x": {body: ".", symlink: true}, "y": {body: ".", symlink: true}})
	app := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'ok'\n"}})

	for _, layers := range [][]string{{esc, dot}, {dot, esc}, {deep, dots}, {esc, deep, dot}} {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimePython312,
			Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: app}, Layers: layers})
		if apiErrorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "outside /opt") {
			t.Errorf("CreateFunction with layers %v: %v, want InvalidParameterValueException", layers, err)
		}
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("the refused function exists: %v", err)
	}

	createFunction(t, c, "f", "python3.12", "app.handler", app, func(in *lambda.CreateFunctionInput) { in.Layers = []string{esc, deep} })
	before := snapshot(t, c)
	for _, layers := range [][]string{{esc, dot}, {deep, dots}} {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"), Layers: layers})
		if apiErrorCode(err) != "InvalidParameterValueException" {
			t.Errorf("UpdateFunctionConfiguration with layers %v: %v, want InvalidParameterValueException", layers, err)
		}
	}
	if after := snapshot(t, c); after["f"] != before["f"] {
		t.Errorf("configuration changed by a refused update")
	}
	if out := invoke(t, c, "f", `{}`); string(out.Payload) != `"ok"` {
		t.Errorf("f with two compatible layers = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
	// Nothing Flint made may hold a link that leads out of its own directory.
	codeDir := filepath.Join(dir, "code")
	err := filepath.WalkDir(codeDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Type()&os.ModeSymlink == 0 {
			return err
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			rel, _ := filepath.Rel(codeDir, real)
			top := strings.Split(rel, string(filepath.Separator))[0]
			if rel == "." || strings.HasPrefix(rel, "..") || !strings.HasPrefix(strings.TrimPrefix(p, codeDir+"/"), top+"/") {
				t.Errorf("%s resolves to %s, outside its own directory", p, real)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinuxTwoLayersReadOpt: with two or more layers /opt is a merged directory, which must be as
// readable by the sandbox's user as one layer's: the function lists /opt and imports a module
// from each layer.
func TestLinuxTwoLayersReadOpt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root (CI runs as root)")
	}
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "linux" })
	if got := s.Sandbox(); got != "linux" {
		t.Fatalf("sandbox = %q, want linux", got)
	}
	c := newClient(s.URL())
	ctx := context.Background()
	var arns []string
	for _, l := range []struct{ name, file, body string }{
		{"one", "python/one.py", "NAME = 'one'\n"},
		{"two", "python/two.py", "NAME = 'two'\n"},
		{"three", "python/pkg/three.py", "NAME = 'three'\n"},
	} {
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(l.name),
			Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{l.file: {body: l.body}})}})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.LayerVersionArn))
	}
	app := mustZip(t, map[string]zipEntry{"app.py": {body: `import importlib, os
def handler(e, c):
    return [sorted(os.listdir("/opt")), sorted(os.listdir("/opt/python"))] + [importlib.import_module(m).NAME for m in e]
`}})
	for _, tt := range []struct {
		layers      int
		event, want string
	}{
		{2, `["one", "two"]`, `[["python"], ["one.py", "two.py"], "one", "two"]`},
		{3, `["one", "two", "pkg.three"]`, `[["python"], ["one.py", "pkg", "two.py"], "one", "two", "three"]`},
	} {
		name := fmt.Sprintf("opt%d", tt.layers)
		createFunction(t, c, name, "python3.12", "app.handler", app, func(in *lambda.CreateFunctionInput) { in.Layers = arns[:tt.layers] })
		if out := invoke(t, c, name, tt.event); string(out.Payload) != tt.want || out.FunctionError != nil {
			t.Errorf("%d layers: %s (%s), want %s", tt.layers, out.Payload, aws.ToString(out.FunctionError), tt.want)
		}
	}
}

// TestCollectorSparesCodeBeingCreated: a function created while the collector runs (kicked by
// the deletion just before) with code nothing referenced a moment ago keeps its code.
func TestCollectorSparesCodeBeingCreated(t *testing.T) {
	dir := t.TempDir()
	s := startCodeServer(t, dir)
	c := newClient(s.URL())
	ctx := context.Background()
	code := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'kept'\n"}})
	prev := ""
	for i := range 20 {
		name := fmt.Sprintf("f%d", i)
		if prev != "" {
			if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(prev)}); err != nil {
				t.Fatal(err)
			}
		}
		createFunction(t, c, name, "python3.12", "app.handler", code) // races the collection the deletion started
		time.Sleep(100 * time.Millisecond)                            // that collection is over
		st := readCodeState(t, s, dir)
		if !slices.Equal(st.objects, []string{codeKey(code)}) || !slices.Equal(st.dirs, []string{codeKey(code)}) {
			t.Fatalf("round %d: the code of %s is gone: %+v", i, name, st)
		}
		prev = name
	}
	if out := invoke(t, c, prev, `{}`); string(out.Payload) != `"kept"` {
		t.Errorf("%s = %s (%s)", prev, out.Payload, aws.ToString(out.FunctionError))
	}
}
