package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// TestEnvironmentEncryptedAtRest creates, updates, publishes and invokes a function whose
// variables hold secrets: the function sees them, GetFunctionConfiguration returns them, and no
// file under the data directory (JetStream's files, the code cache, the logs) nor the operator
// log at debug level contains one.
func TestEnvironmentEncryptedAtRest(t *testing.T) {
	data := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Sandbox, cfg.CgroupParent = "127.0.0.1:0", data, "process", "flint-test-"+filepath.Base(data)
	var oplog lockedBuffer
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(&oplog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newClient(s.URL())
	secret := func() string { b := make([]byte, 12); _, _ = rand.Read(b); return "s3cr3t-" + hex.EncodeToString(b) }
	first, second := secret(), secret()
	fn := "import hashlib, os\ndef handler(e, c):\n    return hashlib.sha256(os.environ['DB_PASSWORD'].encode()).hexdigest()\n"
	createFunction(t, c, "vault", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: fn}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DB_PASSWORD": first}}
		})
	sees := func(qualifier, want string) {
		t.Helper()
		in := &lambda.InvokeInput{FunctionName: aws.String("vault"), LogType: types.LogTypeTail}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := c.Invoke(ctx, in)
		sum := sha256.Sum256([]byte(want))
		if err != nil || string(out.Payload) != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Fatalf("invoke %s: %v %s %s", qualifier, err, aws.ToString(out.FunctionError), out.Payload)
		}
	}
	sees("", first)
	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("vault")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("vault"),
		Environment: &types.Environment{Variables: map[string]string{"DB_PASSWORD": second}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the update", 10*time.Second, func() bool {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("vault")})
		sum := sha256.Sum256([]byte(second))
		return err == nil && string(out.Payload) == `"`+hex.EncodeToString(sum[:])+`"`
	})
	sees(aws.ToString(v1.Version), first) // the version keeps its own
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("vault")})
	if err != nil || got.Environment == nil || got.Environment.Variables["DB_PASSWORD"] != second {
		t.Fatalf("GetFunctionConfiguration: %v %+v", err, got.Environment)
	}
	// Rotate the master key while serving: the records are rewrapped, the old key retired, and
	// after a restart (cold starts) the function still sees its values.
	before, _ := os.ReadFile(filepath.Join(data, "master.key"))
	resp, err := http.Post(s.URL()+"/flint/v1/master-key/rotate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rot struct {
		ActiveKeyId              string
		RetiredKeyIds            []string
		FunctionRecordsRewrapped int
	}
	_ = json.NewDecoder(resp.Body).Decode(&rot)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(rot.RetiredKeyIds) != 1 || rot.FunctionRecordsRewrapped != 2 || !bytes.Contains(before, []byte(rot.RetiredKeyIds[0])) {
		t.Fatalf("rotate = %d %+v", resp.StatusCode, rot)
	}
	// Warm environments are kept: the next invoke is no cold start.
	warm, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("vault"), LogType: types.LogTypeTail})
	if err != nil || warm.FunctionError != nil {
		t.Fatalf("invoke after rotation: %v", err)
	}
	if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(warm.LogResult)); !bytes.Contains(tail, []byte("REPORT")) || bytes.Contains(tail, []byte("Init Duration")) {
		t.Errorf("the invoke after the rotation was a cold start:\n%s", tail)
	}
	if after, _ := os.ReadFile(filepath.Join(data, "master.key")); bytes.Contains(after, []byte(rot.RetiredKeyIds[0])) || !bytes.Contains(after, []byte(rot.ActiveKeyId)) {
		t.Errorf("key file after rotation:\n%s", after)
	}
	logsStored(t, s.URL(), "vault", warm)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = server.New(cfg, slog.New(slog.NewTextHandler(&oplog, &slog.HandlerOptions{Level: slog.LevelDebug}))); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c = newClient(s.URL())
	sees("", second)
	sees(aws.ToString(v1.Version), first)
	last, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("vault"), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	logsStored(t, s.URL(), "vault", last)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	scanned := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, v := range []string{first, second} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds a secret variable in the clear", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{first, second} {
		if bytes.Contains(oplog.Bytes(), []byte(v)) {
			t.Error("the operator log holds a secret variable")
		}
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err != nil {
		t.Errorf("master key file: %v", err)
	}
	t.Logf("%d files scanned under the data directory, %d bytes of operator log", scanned, len(oplog.Bytes()))
}

// logsStored waits until the function's stored logs (what the scan must cover) hold out's
// invocation.
func logsStored(t *testing.T, url, fn string, out *lambda.InvokeOutput) {
	t.Helper()
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	_, id, ok := strings.Cut(string(tail), "REPORT RequestId: ")
	if id, _, _ = strings.Cut(id, "\t"); !ok || id == "" {
		t.Fatalf("no request id in the log tail:\n%s", tail)
	}
	waitFor(t, "the invocation's logs in JetStream", 10*time.Second, func() bool {
		resp, err := http.Get(url + "/flint/v1/functions/" + fn + "/logs")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), id)
	})
}
