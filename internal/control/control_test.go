package control_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/worker"
)

// env is a control plane on a real store, with the real invocation service as the view that
// writes wait for (its watches running), as server wires them; nothing runs a function.
type env struct {
	st      *store.Store
	view    *invoke.Service
	plane   *control.Plane
	account lambda.Account
	cache   *artifact.Cache // the node's unpack cache, which the code store fills and empties
}

func newEnv(t *testing.T) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Log: log, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	workers := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1", Log: log})
	t.Cleanup(workers.Close)
	code, err := artifact.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	view := invoke.New(invoke.RegistryOf(st), workers, code, artifact.DefaultLimits(), 1000, nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = view.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-view.Ready()
	account := lambda.Account{Region: "us-east-1", ID: "123456789012"}
	return &env{st: st, view: view, account: account, cache: code,
		plane: control.New(control.Config{Store: st, View: view, Account: account, Log: log,
			Invoke: view, Code: code, Limits: artifact.DefaultLimits()})}
}

// function stores a bare function record named name (as CreateFunction would, without code).
func (e *env) function(t *testing.T, name string) {
	t.Helper()
	f := &lambda.Function{Config: lambda.FunctionConfiguration{FunctionName: name,
		FunctionArn: e.account.FunctionARN(name, ""), Version: lambda.LatestVersion, Runtime: "provided.al2023",
		Handler: "bootstrap", MemorySize: 128, Timeout: 3}}
	if _, err := e.st.Functions().Create(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// version stores published version n of name.
func (e *env) version(t *testing.T, name string, n int) {
	t.Helper()
	f, err := e.st.Functions().Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	v := *f.Function
	v.Config.Version = strconv.Itoa(n)
	v.Config.FunctionArn = e.account.FunctionARN(name, strconv.Itoa(n))
	if _, err := e.st.Versions().Create(context.Background(), &v, n); err != nil {
		t.Fatal(err)
	}
}

// alias points alias of name at version, through the Aliases service.
func (e *env) alias(t *testing.T, name, alias, version string) {
	t.Helper()
	if _, err := e.plane.Aliases.Create(context.Background(), control.Target{Op: "CreateAlias", Name: name},
		control.AliasInput{Name: alias, FunctionVersion: &version}); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks err against an AWS error code ("" means no error) and message substring.
func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *apierr.Error
	if !errors.As(control.AWSError(err), &e) {
		t.Fatalf("error %v (%T), want %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code %s (%s), want %s", e.Code, e.Message, code)
	}
	if msg != "" && !strings.Contains(e.Message, msg) {
		t.Fatalf("error message %q, want it to contain %q", e.Message, msg)
	}
}
