package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// readyTree is a ready package (a bootstrap at its root) with what makes zippers differ: an
// executable, a subdirectory, an empty directory, a file with unusual permissions, a symlink to
// a file and one to a directory, both inside the package.
var readyTree = []treeEntry{
	{name: "bootstrap", mode: 0o755, content: "#!/bin/sh\nexec ./lib/run.sh\n"},
	{name: "lib/run.sh", mode: 0o700, content: "#!/bin/sh\necho run\n"},
	{name: "lib/data.json", mode: 0o600, content: `{"a": 1}`},
	{name: "cache/", mode: 0o700},
	{name: "data.json", content: "->lib/data.json"},
	{name: "current", content: "->lib"},
}

// TestSameDirectorySameCodeSha256 packages one ready directory the three ways Flint can:
// flint build, flint deploy DIR and a stack (flint deploy -f), against a real server. The
// package is the same bytes each way, so GetFunction reports the same CodeSha256.
func TestSameDirectorySameCodeSha256(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startServer(t, ctx, nil)
	work := t.TempDir()
	dir := filepath.Join(work, "ready")
	writeTree(t, dir, readyTree)

	// flint build writes the package and prints its CodeSha256.
	out := filepath.Join(work, "ready.zip")
	var built []byte
	var builtSha string
	code, stdout, stderr := runCLI(t, ctx, "build", dir, "-o", out)
	if code != 0 {
		t.Errorf("flint build %s: exit %d: %s", dir, code, stderr)
	} else {
		var err error
		if built, err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(built)
		builtSha = base64.StdEncoding.EncodeToString(sum[:])
		if !strings.Contains(stdout, "CodeSha256 "+builtSha) {
			t.Errorf("flint build printed %q, want CodeSha256 %s", stdout, builtSha)
		}
	}

	if code, _, stderr := runCLI(t, ctx, "deploy", dir, "--name", "viadir", "--runtime", "provided.al2023"); code != 0 {
		t.Fatalf("flint deploy %s: exit %d: %s", dir, code, stderr)
	}
	stack := filepath.Join(work, "flint.yaml")
	if err := os.WriteFile(stack, []byte("functions:\n  viastack:\n    code: ready\n    runtime: provided.al2023\n    handler: bootstrap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, ctx, "deploy", "-f", stack); code != 0 {
		t.Fatalf("flint deploy -f %s: exit %d: %s", stack, code, stderr)
	}
	// And once more through a .zip file: the bytes flint build wrote are what the server got.
	if built != nil {
		if code, _, stderr := runCLI(t, ctx, "deploy", out, "--name", "viazip", "--runtime", "provided.al2023"); code != 0 {
			t.Fatalf("flint deploy %s: exit %d: %s", out, code, stderr)
		}
	}

	a := &app{endpoint: os.Getenv("FLINT_ENDPOINT")}
	lc, err := a.lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shas := map[string]string{"flint build": builtSha}
	for _, fn := range []string{"viadir", "viastack", "viazip"} {
		if fn == "viazip" && built == nil {
			continue
		}
		got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatalf("GetFunction %s: %v", fn, err)
		}
		shas[fn] = aws.ToString(got.Configuration.CodeSha256)
	}
	for way, sha := range shas {
		if sha != shas["viadir"] {
			t.Errorf("CodeSha256 by %s = %q, by flint deploy DIR = %q; want the same (all: %v)", way, sha, shas["viadir"], shas)
		}
	}

	// The package flint build wrote is the deploy's, byte for byte.
	zipped, err := loadPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if built != nil && !bytes.Equal(zipped, built) {
		t.Errorf("flint build wrote %d bytes, flint deploy DIR zips %d bytes: they differ", len(built), len(zipped))
	}
}
