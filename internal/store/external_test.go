package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
)

// flintPermissions are the permissions docs/CLUSTER.md tells operators to give Flint's NATS
// user: the tests' servers grant exactly these, so the documented set is the one that works.
var flintPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		"$JS.API.>", "$JS.ACK.>", "$KV.>", "$O.>", "flint.>", "_INBOX.>"}},
	Subscribe: &server.SubjectPermission{Allow: []string{"flint.>", "_INBOX.>"}},
}

// runNATS starts n real nats-servers with JetStream in-process, routed to each other on
// loopback when n > 1, the way an operator runs an existing NATS cluster, and waits until
// their JetStream has a meta leader that knows every server. mutate adjusts each server's
// options (authentication, TLS, max payload).
func runNATS(t *testing.T, n int, mutate func(o *server.Options)) []*server.Server {
	t.Helper()
	ports := protoClusterPorts(t, n)
	servers := make([]*server.Server, n)
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("nats%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(),
			NoSigs: true, NoLog: true,
			MaxPayload: 8 << 20,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "ext", Host: "127.0.0.1", Port: ports[i]}
			for j, p := range ports {
				if j != i {
					o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
				}
			}
		}
		if mutate != nil {
			mutate(o)
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("nats server %d not ready", i+1)
		}
		servers[i] = s
	}
	if n > 1 {
		deadline := time.Now().Add(time.Minute)
		for _, s := range servers {
			for why := metaReady(s, n); why != ""; why = metaReady(s, n) {
				if time.Now().After(deadline) {
					t.Fatalf("nats cluster: %s", why)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return servers
}

// withUser makes a server admit one user with Flint's documented permissions.
func withUser(user, password string) func(o *server.Options) {
	return func(o *server.Options) {
		o.Users = []*server.User{{Username: user, Password: password, Permissions: flintPermissions}}
	}
}

func openExternalStore(ctx context.Context, t *testing.T, dir string, keys *crypt.Keyring, x ExternalOptions) (*Store, error) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", x.Node)
	s, err := Open(ctx, Options{Dir: dir, Keyring: keys, Log: log, External: &x})
	if err == nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

// streamReplicas are the replica counts of every stream in js.
func streamReplicas(ctx context.Context, t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = st.CachedInfo().Config.Replicas
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExternalStoreSingleServer: a store on an existing single NATS server with a user and
// password (the documented permissions, nothing more) opens every asset with one replica,
// keeps what is written across a reopen, refuses wrong credentials, a replica count the
// server cannot keep or the assets do not have, and a server whose max_payload is too small;
// the data directory it used is refused to the embedded server and the other way round; no
// goroutine outlives it.
func TestExternalStoreSingleServer(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // checked last, once the servers are gone too
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ns := runNATS(t, 1, withUser("flint", "s3cret"))[0]
	keys := testKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	x := ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "n1", User: "flint", Password: "s3cret"}
	s, err := openExternalStore(ctx, t, dir, keys, x)
	if err != nil {
		t.Fatalf("open on the external server: %v", err)
	}
	reps := streamReplicas(ctx, t, s.js)
	if len(reps) < 16 {
		t.Errorf("%d streams on the external server, want Flint's buckets and object store: %v", len(reps), reps)
	}
	for name, r := range reps {
		if r != 1 {
			t.Errorf("stream %s has %d replicas on a single server, want 1", name, r)
		}
	}
	fn := &lambda.Function{Config: lambda.FunctionConfiguration{FunctionName: "hello", Runtime: "python3.11", Handler: "app.handler",
		Environment: &lambda.EnvironmentResp{Variables: map[string]string{"K": "v"}}}}
	if _, err := s.Functions().Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if s.ClientURL() != "" {
		t.Errorf("ClientURL on an external NATS = %q, want none (clients connect to the NATS itself)", s.ClientURL())
	}
	s.Close()

	t.Run("reopened, it reads what it wrote", func(t *testing.T) {
		s, err := openExternalStore(ctx, t, dir, keys, x)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Functions().Get(ctx, "hello")
		if err != nil || got.Config.Environment == nil || got.Config.Environment.Variables["K"] != "v" {
			t.Fatalf("Get after reopening = %+v, %v", got, err)
		}
		s.Close()
	})
	t.Run("wrong password", func(t *testing.T) {
		bad := x
		bad.Password = "wrong"
		dir := t.TempDir()
		_, err := openExternalStore(ctx, t, dir, keys, bad)
		if _, serr := os.Stat(filepath.Join(dir, externalMarker)); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("the refused start marked the data directory: %v", serr)
		}
		if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "refused Flint's credentials") {
			t.Fatalf("open with a wrong password = %v, want the refused credentials", err)
		}
		t.Log(err)
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("password in the URL", func(t *testing.T) {
		u := x
		u.User, u.Password = "", ""
		u.URLs = []string{strings.Replace(ns.ClientURL(), "nats://", "nats://flint:s3cret@", 1)}
		s, err := openExternalStore(ctx, t, t.TempDir(), keys, u)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		u.URLs = []string{strings.Replace(ns.ClientURL(), "nats://", "nats://flint:nope@", 1)}
		_, err = openExternalStore(ctx, t, t.TempDir(), keys, u)
		if !errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "nope") {
			t.Fatalf("open with a wrong password in the URL = %v, want the refusal without the password", err)
		}
	})
	t.Run("replicas the server cannot keep", func(t *testing.T) {
		r := x
		r.Replicas = 3
		_, err := openExternalStore(ctx, t, t.TempDir(), keys, r)
		if !errors.Is(err, ErrReplicas) {
			t.Fatalf("open with 3 replicas against assets of 1 = %v, want ErrReplicas", err)
		}
		t.Log(err)
		// On a fresh server nothing is on record yet: the server itself is the reason.
		fresh := runNATS(t, 1, nil)[0]
		r.URLs = []string{fresh.ClientURL()}
		r.User, r.Password = "", ""
		_, err = openExternalStore(ctx, t, t.TempDir(), keys, r)
		if err == nil || !strings.Contains(err.Error(), "not part of a cluster") {
			t.Fatalf("open with 3 replicas on a single fresh server = %v", err)
		}
		if reps := streamReplicas(ctx, t, mustJS(t, fresh)); len(reps) != 0 {
			t.Errorf("the refused node created %v", reps)
		}
	})
	t.Run("a user without the JetStream API", func(t *testing.T) {
		narrow := runNATS(t, 1, func(o *server.Options) {
			o.Users = []*server.User{{Username: "flint", Password: "pw", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"flint.>", "_INBOX.>"}}}}}
		})[0]
		_, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{narrow.ClientURL()}, Node: "n1", User: "flint", Password: "pw"})
		if err == nil || !strings.Contains(err.Error(), "Permissions Violation") || !strings.Contains(err.Error(), "$JS.API") {
			t.Fatalf("open without the JetStream API's permission = %v, want the server's permissions violation", err)
		}
		t.Log(err)
	})
	t.Run("a server without JetStream", func(t *testing.T) {
		plain := runNATS(t, 1, func(o *server.Options) { o.JetStream = false })[0]
		_, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{plain.ClientURL()}, Node: "n1"})
		if !errors.Is(err, jetstream.ErrJetStreamNotEnabled) || !strings.Contains(err.Error(), "enable it on the servers") {
			t.Fatalf("open on a server without JetStream = %v", err)
		}
		t.Log(err)
	})
	t.Run("a server with the default max_payload", func(t *testing.T) {
		small := runNATS(t, 1, func(o *server.Options) { o.MaxPayload = 0 })[0] // 1 MB
		_, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{small.ClientURL()}, Node: "n1"})
		if err == nil || !strings.Contains(err.Error(), "max_payload: 8MB") {
			t.Fatalf("open on a server with a 1 MB max_payload = %v", err)
		}
		t.Log(err)
	})
	t.Run("the data directory is refused to the embedded server", func(t *testing.T) {
		_, err := Open(ctx, Options{Dir: dir, Keyring: keys})
		if !errors.Is(err, ErrModeMismatch) || !strings.Contains(err.Error(), "external NATS") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("embedded Open of an external node's data directory = %v", err)
		}
		t.Log(err)
	})
	t.Run("an embedded server's data directory is refused", func(t *testing.T) {
		embedded := t.TempDir()
		s, err := Open(ctx, Options{Dir: embedded, Keyring: keys})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err = openExternalStore(ctx, t, embedded, keys, x)
		if !errors.Is(err, ErrModeMismatch) {
			t.Fatalf("external Open of an embedded server's data directory = %v, want ErrModeMismatch", err)
		}
		if _, err := os.Stat(filepath.Join(embedded, externalMarker)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused directory was marked: %v", err)
		}
	})
}

// mustJS is a JetStream context on s with every right (the server has no users).
func mustJS(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestExternalStoreCluster: stores on different servers of an existing 3-server NATS cluster
// (token authentication in the URL) share one registry with 3 replicas of everything; a node
// given another replica count is refused and changes nothing; a store reconnects to another
// server when its own stops.
func TestExternalStoreCluster(t *testing.T) {
	servers := runNATS(t, 3, func(o *server.Options) { o.Authorization = "tok3n" })
	keys := testKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := func(i int) string { return strings.Replace(servers[i].ClientURL(), "nats://", "nats://tok3n@", 1) }
	a, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{url(0)}, Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	// b knows all three servers, so it can reconnect to another when its own goes.
	b, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{url(1), url(2), url(0)}, Node: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range streamReplicas(ctx, t, b.js) {
		if r != 3 {
			t.Errorf("stream %s has %d replicas on a 3-server cluster, want 3", name, r)
		}
	}
	fn := &lambda.Function{Config: lambda.FunctionConfiguration{FunctionName: "shared", Runtime: "python3.11", Handler: "app.handler"}}
	if _, err := a.Functions().Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Functions().Get(ctx, "shared"); err != nil || got.Config.FunctionName != "shared" {
		t.Fatalf("b reads a's function: %+v, %v", got, err)
	}
	t.Run("another replica count is refused", func(t *testing.T) {
		_, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{url(2)}, Node: "c", Replicas: 1})
		if !errors.Is(err, ErrReplicas) {
			t.Fatalf("open with 1 replica against R3 assets = %v, want ErrReplicas", err)
		}
		for name, r := range streamReplicas(ctx, t, b.js) {
			if r != 3 {
				t.Errorf("after the refusal stream %s has %d replicas", name, r)
			}
		}
	})
	t.Run("b goes on through another server when its own stops", func(t *testing.T) {
		servers[1].Shutdown()
		servers[1].WaitForShutdown()
		fn2 := &lambda.Function{Config: lambda.FunctionConfiguration{FunctionName: "after", Runtime: "python3.11", Handler: "app.handler"}}
		deadline := time.Now().Add(time.Minute)
		for {
			// Each attempt bounded: one sent while b was reconnecting can wait out the stream's
			// new leader (seen to take the whole test's context on a loaded machine).
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := b.Functions().Create(actx, fn2)
			cancel()
			if err == nil || errors.Is(err, ErrExists) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("b writes after its server stopped: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got, err := a.Functions().Get(ctx, "after"); err != nil || got.Config.FunctionName != "after" {
			t.Fatalf("a reads what b wrote through another server: %+v, %v", got, err)
		}
	})
}

// TestExternalStoreWaitsForNATS: a store started before its NATS server waits for it (as
// nodes started together with their NATS cluster do) and opens once it answers; a store whose
// context ends while no server answers says why.
func TestExternalStoreWaitsForNATS(t *testing.T) {
	keys := testKeyring(t)
	port := protoClusterPorts(t, 1)[0]
	x := ExternalOptions{URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}, Node: "n1"}

	short, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err := openExternalStore(short, t, t.TempDir(), keys, x)
	cancel()
	if !errors.Is(err, nats.ErrNoServers) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open with no server until the deadline = %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(ctx, Options{Dir: t.TempDir(), Keyring: keys, External: &x})
		done <- result{s, err}
	}()
	time.Sleep(time.Second) // let it find no server first
	select {
	case r := <-done:
		t.Fatalf("open returned before any server ran: %v", r.err)
	default:
	}
	runNATS(t, 1, func(o *server.Options) { o.Port = port })
	r := <-done
	if r.err != nil {
		t.Fatalf("open once the server runs: %v", r.err)
	}
	r.s.Close()
}

// TestExternalStoreNodeName: while a store answers for a node name on an external NATS, a
// second store with that name waits (and gives up when its context ends, naming the holder);
// once the first closes, the name is free.
func TestExternalStoreNodeName(t *testing.T) {
	ns := runNATS(t, 1, nil)[0]
	keys := testKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x := ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "twin"}
	first, err := openExternalStore(ctx, t, t.TempDir(), keys, x)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = openExternalStore(short, t, t.TempDir(), keys, x)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "node name twin: another Flint node connected to this NATS answers for it") ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("a second store named twin = %v, want the name in use", err)
	}
	t.Log(err)
	other := x
	other.Node = "other"
	if s, err := openExternalStore(ctx, t, t.TempDir(), keys, other); err != nil {
		t.Fatalf("a store with another name: %v", err)
	} else {
		s.Close()
	}
	first.Close()
	second, err := openExternalStore(ctx, t, t.TempDir(), keys, x)
	if err != nil {
		t.Fatalf("twin after the first closed: %v", err)
	}
	second.Close()
}

// TestUnreachable: what the start waits out (no server to talk to yet) and what ends it at
// once (what a server said).
func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused everywhere", nats.ErrNoServers, true},
		{"a name that does not resolve yet", fmt.Errorf("dial: %w", &net.DNSError{Err: "no such host", Name: "nats.invalid", IsNotFound: true}), true},
		{"a dial that timed out", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, true},
		{"wrong credentials", nats.ErrAuthorization, false},
		{"a TLS alert from the server", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, false},
		{"an unknown authority", errors.New("nats: tls error: x509: certificate signed by unknown authority"), false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("%s: unreachable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
