package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandsAgainstServer drives deploy, invoke, ls, logs and rm against a real in-process
// Flint, the way a user does.
func TestCommandsAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startServer(t, ctx, nil)

	dir := t.TempDir()
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("def handler(event, context):\n    print('hello log')\n    return {'got': event, 'v': 1}\n")
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"deploy", dir, "--name", "clifn", "--runtime", "python3.12", "--handler", "app.handler", "--env", "KEY=V"}, 0, "created clifn", ""},
		{[]string{"invoke", "clifn", `{"a":1}`}, 0, `{"got": {"a": 1}, "v": 1}`, ""},
		{[]string{"invoke", "clifn", `{"a":1}`, "--tail"}, 0, `"v": 1`, "REPORT RequestId:"},
		{[]string{"ls"}, 0, "clifn", ""},
		{[]string{"invoke", "nope", "{}"}, 1, "", "flint: ResourceNotFoundException: Function not found"},
		{[]string{"invoke", "clifn", "{bad json"}, 1, "", "InvalidRequestContentException"},
		{[]string{"bench", "clifn", `{"a":1}`, "-n", "20", "-c", "2", "--warmup", "4"}, 0, "clifn: 20 invokes at concurrency 2", ""},
		{[]string{"bench", "clifn", "-n", "6", "--warmup", "0", "--json"}, 0, `"invokes":6,"concurrency":1,"function_errors":0,"failed":0`, ""},
		{[]string{"bench", "nope"}, 1, "", "flint: ResourceNotFoundException: Function not found"},
		{[]string{"bench", "clifn", "{bad json"}, 1, "", "InvalidRequestContentException"},
	}
	for _, st := range steps {
		code, out, errOut := runCLI(t, ctx, st.args...)
		if code != st.wantCode || !strings.Contains(out, st.wantOut) || !strings.Contains(errOut, st.wantErr) {
			t.Errorf("flint %s: code %d stdout %q stderr %q; want code %d, stdout with %q, stderr with %q",
				strings.Join(st.args, " "), code, out, errOut, st.wantCode, st.wantOut, st.wantErr)
		}
	}

	// Redeploying updates the code in place.
	write("def handler(event, context):\n    return 'v2'\n")
	if code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "clifn", "--runtime", "python3.12", "--handler", "app.handler"); code != 0 {
		t.Fatalf("redeploy: %s", errOut)
	}
	if _, out, _ := runCLI(t, ctx, "invoke", "clifn"); strings.TrimSpace(out) != `"v2"` {
		t.Errorf("after redeploy invoke printed %q", out)
	}

	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, logs, _ = runCLI(t, ctx, "logs", "clifn")
		if strings.Count(logs, "REPORT RequestId:") >= 3 {
			break
		}
	}
	if !strings.Contains(logs, "hello log") || strings.Count(logs, "REPORT RequestId:") < 3 {
		t.Errorf("flint logs printed:\n%s", logs)
	}

	if code, _, errOut := runCLI(t, ctx, "rm", "clifn"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	if code, _, errOut := runCLI(t, ctx, "invoke", "clifn"); code != 1 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("invoke after rm: code %d, stderr %q", code, errOut)
	}
}
