package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// TestSecondServerOnSameDataDir: a second `flint serve` on a data directory a server is using
// exits at once, non-zero, with one line naming the directory and the first server's pid,
// having touched nothing; the first keeps serving. Both sandboxes: with the linux one a second
// server used to wait silently on the sandbox's state lock (then fall back to processes with a
// false warning), with the process one it started and served a state split from the first's.
func TestSecondServerOnSameDataDir(t *testing.T) {
	bin := buildFlint(t)
	for _, sandbox := range []string{"process", "linux"} {
		t.Run(sandbox, func(t *testing.T) {
			if sandbox == "linux" {
				needLinuxSandbox(t)
			}
			data, work := t.TempDir(), t.TempDir()
			first := startFlintProcess(t, bin, data, filepath.Join(work, "first.log"), "--log-level", "warn", "--sandbox", sandbox)
			c := newClient(first.url)
			createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip)
			checkEcho(t, c, "echo", `{"before":1}`, "")
			files := dataFiles(t, data)

			addr := freeAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--listen", addr, "--data", data, "--sandbox", sandbox)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			client := &http.Client{Timeout: time.Second}
			var err error
		wait:
			for {
				select {
				case err = <-done:
					break wait
				case <-time.After(100 * time.Millisecond):
				}
				if resp, herr := client.Get("http://" + addr + "/2016-08-19/account-settings"); herr == nil {
					resp.Body.Close()
					_ = cmd.Process.Kill()
					<-done
					t.Fatalf("a second server on %s serves the API at %s beside the first", data, addr)
				}
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("second flint serve: %v, want exit status 1", err)
			}
			want := fmt.Sprintf("flint: data directory %s is in use by another flint server (pid %d)\n", data, first.cmd.Process.Pid)
			if got := stderr.String(); got != want {
				t.Errorf("second flint serve wrote to stderr:\n%s\nwant:\n%s", got, want)
			}
			if stdout.Len() > 0 {
				t.Errorf("second flint serve wrote to stdout: %s", stdout.String())
			}
			if got := dataFiles(t, data); !equalTrees(got, files) {
				t.Errorf("the second server changed the data directory's files:\nbefore %v\nafter  %v", files, got)
			}

			// In-process too: Start fails with the typed error.
			cfg := config.Default()
			cfg.Listen, cfg.DataDir, cfg.Sandbox = "127.0.0.1:0", data, sandbox
			s, err := server.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start(ctx)
			var inUse *server.DataDirInUseError
			if !errors.As(err, &inUse) || inUse.PID != first.cmd.Process.Pid || inUse.Dir != data {
				t.Errorf("Server.Start on a data directory in use: %v, want a DataDirInUseError naming %s and pid %d", err, data, first.cmd.Process.Pid)
			}
			s.Close()

			checkEcho(t, c, "echo", `{"after":1}`, "")
			if t.Failed() {
				first.dumpLog(t)
			}
		})
	}
}

// dataFiles lists the regular files and directories under dir (not the sandboxes' environments and
// JetStream's files, which the first server changes as it runs), with their sizes for files.
func dataFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "jetstream" || strings.HasPrefix(rel, "sandboxes"+string(filepath.Separator)+"envs") || rel == "code" {
			if info.IsDir() && rel != "." {
				return filepath.SkipDir
			}
		}
		if info.IsDir() {
			out[rel+"/"] = 0
		} else {
			out[rel] = info.Size()
		}
		return nil
	})
	return out
}

func equalTrees(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
