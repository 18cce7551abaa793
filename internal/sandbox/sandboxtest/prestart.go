package sandboxtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// prestartProbe is a runtime that waits for its binding as Flint's runtime clients do, then
// reports what it sees: its variables, working directory, the function's code and layer files,
// and the memory limit in force.
const prestartProbe = `
import json, os, sys
before = os.listdir("/var/task") if os.path.isdir("/var/task") else []
print(json.dumps([n for n in before if n != ".empty"]), flush=True)
fd = int(os.environ["` + sandbox.BindFDEnv + `"])
if not os.environ.get("SILENT"):
    os.write(fd, b"w")
with os.fdopen(fd, "rb") as f:
    b = json.loads(f.read())
os.environ.clear()
for kv in b["env"]:
    k, _, v = kv.partition("=")
    os.environ[k] = v
os.chdir(b["cwd"])
def read(p):
    try:
        with open(p) as f:
            return f.read().strip()
    except OSError as e:
        return "error: " + e.__class__.__name__
print(json.dumps({"greeting": os.environ.get("GREETING"), "api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
    "spare": os.environ.get("SPARE_ONLY"), "code": read("code.txt"), "layer": read(os.environ["OPT"] + "/layer.txt"),
    "uid": os.getuid()}), flush=True)
`

// checkPrestart checks sandbox.Prestarter: a runtime started before its function sees the
// function's code, layers and variables only once bound, and none of the spare's own variables.
func checkPrestart(t *testing.T, b sandbox.Backend) {
	ps, ok := b.(sandbox.Prestarter)
	if !ok {
		t.Skipf("%s cannot prestart runtimes", b.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sp := sandbox.Spec{ID: fmt.Sprintf("p%s-%d", time.Now().Format("150405"), seq.Add(1)), RuntimeDir: t.TempDir(),
		Argv: []string{"/usr/bin/python3", "-c", prestartProbe}, Env: []string{"PATH=/usr/bin:/bin", "SPARE_ONLY=1"},
		MemoryMB: 128, EphemeralStorageMB: 512, Output: w}
	inst, err := ps.Prestart(ctx, sp)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = inst.Destroy(context.Background()) }()
	task, opt := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "code.txt"), []byte("the code"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opt, "layer.txt"), []byte("the layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &output{r: r, br: bufio.NewReader(r)}
	if before := out.line(t); before != "[]" {
		t.Errorf("before Bind the runtime saw %s in /var/task, want nothing", before)
	}
	if err := inst.Waiting(ctx); err != nil {
		t.Errorf("Waiting for a runtime that said it waits: %v", err)
	}
	// One that never says so is not waiting.
	silent := sp
	silent.ID, silent.Env, silent.Output = sp.ID+"s", append(sp.Env, "SILENT=1"), nil
	if mute, err := ps.Prestart(ctx, silent); err != nil {
		t.Error(err)
	} else {
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := mute.Waiting(wctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Waiting for a runtime that never said it waits = %v, want the context's deadline", err)
		}
		wcancel()
		_ = mute.Destroy(context.Background())
	}
	if err := inst.Bind(ctx, sandbox.Binding{TaskDir: task, OptDir: opt, MemoryMB: 256, EphemeralStorageMB: 600,
		Env: []string{"PATH=/usr/bin:/bin", "GREETING=bound", "OPT=" + sandbox.GuestOptRoot}}); err != nil {
		t.Fatal(err)
	}
	if err := inst.Bind(ctx, sandbox.Binding{TaskDir: task}); err == nil {
		t.Error("a second Bind succeeded")
	}
	line := out.line(t)
	var got struct {
		Greeting, API, Spare, Code, Layer *string
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("probe said %q: %v", line, err)
	}
	str := func(p *string) string {
		if p == nil {
			return "<unset>"
		}
		return *p
	}
	if str(got.Greeting) != "bound" || str(got.Code) != "the code" || str(got.Layer) != "the layer" || got.Spare != nil {
		t.Errorf("bound runtime saw %s, want GREETING=bound, the code, the layer and no SPARE_ONLY", line)
	}
	if a := str(got.API); a != inst.RuntimeAPI().Addr().String() && a != "127.0.0.1:9001" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %s, want the Runtime API's address", a)
	}
	if ml, ok := inst.(MemoryLimiter); ok && ml.MemoryLimit() != 256<<20 {
		t.Errorf("MemoryLimit after Bind = %d, want the binding's 256 MB", ml.MemoryLimit())
	}
	exit, err := inst.Wait(ctx)
	if err != nil || exit.Code != 0 {
		t.Errorf("exit = %v, %v; want 0", exit, err)
	}
}
