package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/config"
)

// noBashEnv runs a test binary in a mount namespace of its own whose /usr/bin (and so /bin)
// has no bash: "setup" makes it and re-executes the binary with "run" (so that every package is
// initialised afresh on a host without bash), which runs the test.
const noBashEnv = "FLINT_TEST_NO_BASH"

func init() {
	if os.Getenv(noBashEnv) != "setup" {
		return
	}
	if err := hideBash(); err != nil {
		fmt.Fprintln(os.Stderr, "hide bash:", err)
		os.Exit(2)
	}
	os.Setenv(noBashEnv, "run")
	err := syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	fmt.Fprintln(os.Stderr, "re-exec:", err)
	os.Exit(2)
}

// hideBash, in a mount namespace of this process's own (never the host's: the mounts below
// are private to it), puts a tmpfs over /usr/bin that holds every program of the host's but
// bash: links to them through a bind of the original (the Python interpreter copied, as it finds
// its library from its own path).
func hideBash() error {
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	stage, err := os.MkdirTemp("", "flint-usrbin")
	if err != nil {
		return err
	}
	if err := unix.Mount("/usr/bin", stage, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /usr/bin: %w", err)
	}
	if err := unix.Mount("tmpfs", "/usr/bin", "tmpfs", 0, "mode=755"); err != nil {
		return fmt.Errorf("tmpfs /usr/bin: %w", err)
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, de := range ents {
		name, src, dst := de.Name(), filepath.Join(stage, de.Name()), filepath.Join("/usr/bin", de.Name())
		switch {
		case name == "bash" || name == "rbash":
			continue
		case de.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			err = os.Symlink(target, dst)
		case strings.HasPrefix(name, "python3"):
			b, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			err = os.WriteFile(dst, b, 0o755)
		default:
			err = os.Symlink(src, dst)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestExtensionCrashWithoutBash: an external extension's crash is Extension.Crash at once, on a
// host whose /bin has no bash (a mount namespace of the test's own): during INIT and after an
// INVOKE, in each sandbox. The crash watch was a bash /dev/tcp connection; without bash the
// launcher fell back to /bin/sh and no watch, so a crash during INIT became an INIT timeout and
// one after INVOKE an invocation timeout. (The linux sandbox's root binds the host's /usr without
// the test's tmpfs on it, so bash stays in the root there: what this proves is that nothing of
// Flint's needs a shell any more, the host's or the root's. The sandbox conformance test
// "extensions run beside the runtime" shows that no shell starts extensions.)
func TestExtensionCrashWithoutBash(t *testing.T) {
	if os.Getenv(noBashEnv) == "run" {
		testExtensionCrashWithoutBash(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: a mount namespace hides bash")
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestExtensionCrashWithoutBash$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), noBashEnv+"=setup")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("in a mount namespace without bash:\n%s", out)
	if err != nil {
		t.Fatalf("the test without bash failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestExtensionCrashWithoutBash") {
		t.Fatal("the test without bash did not run")
	}
}

func testExtensionCrashWithoutBash(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err == nil {
		t.Fatal("/bin/bash is still there")
	}
	if p, err := exec.LookPath("bash"); err == nil {
		t.Fatalf("bash is still found at %s", p)
	}
	faulty, err := os.ReadFile("testdata/extensions/flint-faulty")
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range extSandboxes(t) {
		t.Run(sb, func(t *testing.T) {
			s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb; c.InitTimeout = 5 * time.Second })
			c := newClient(s.URL())
			layer, err := c.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String("faulty"),
				Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"extensions/flint-faulty": {body: string(faulty), mode: 0o755}})}})
			if err != nil {
				t.Fatal(err)
			}
			fn := func(name, fault string) {
				createFunction(t, c, name, "provided.al2023", "bootstrap", goEchoZip, func(in *lambda.CreateFunctionInput) {
					in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
					in.Environment = &types.Environment{Variables: map[string]string{"FAULT": fault}}
					in.Timeout = aws.Int32(5)
				})
			}
			fn("crash-init", "crash-init")
			out := invoke(t, c, "crash-init", `{}`, withTail)
			if e := functionError(t, out); e.ErrorType != "Extension.Crash" {
				t.Errorf("extension crashing during INIT: %+v, want Extension.Crash", e)
			}
			fn("crash-invoke", "crash-invoke")
			out = invoke(t, c, "crash-invoke", `{"n":1}`, withTail)
			if out.FunctionError != nil || string(out.Payload) != `{"n":1}` {
				t.Errorf("invoke = %s %s, want the function's answer", aws.ToString(out.FunctionError), out.Payload)
			}
			if tail := decodeTail(t, out); !strings.Contains(tail, "Status: error") || !strings.Contains(tail, "Error Type: Extension.Crash") {
				t.Errorf("REPORT after the extension crashed on INVOKE does not say Extension.Crash:\n%s", tail)
			}
		})
	}
}
