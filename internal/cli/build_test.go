package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildCommand builds examples/go-echo twice with flint build: one line each, same bytes.
func TestBuildCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var zips [][]byte
	var lines []string
	for _, name := range []string{"a.zip", "b.zip"} {
		out := filepath.Join(dir, name)
		code, stdout, stderr := runCLI(t, ctx, "build", filepath.Join("..", "..", "examples", "go-echo"), "-o", out)
		if code != 0 {
			t.Fatalf("flint build: exit %d: %s", code, stderr)
		}
		if strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(stdout, out+" ") || !strings.Contains(stdout, "CodeSha256 ") {
			t.Errorf("flint build printed %q", stdout)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		zips = append(zips, b)
		lines = append(lines, strings.TrimPrefix(stdout, out))
	}
	if !bytes.Equal(zips[0], zips[1]) || lines[0] != lines[1] {
		t.Errorf("two builds differ: %q vs %q", lines[0], lines[1])
	}
	if code, _, stderr := runCLI(t, ctx, "build", t.TempDir()); code != 1 || !strings.Contains(stderr, "no Go, Python or Node.js sources") {
		t.Errorf("flint build of an empty dir: exit %d, %q", code, stderr)
	}
}
