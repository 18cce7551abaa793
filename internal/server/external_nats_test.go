package server_test

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/flint-run/flint/internal/clustertest"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/tlscert/tlscerttest"
)

// externalPermissions are the permissions docs/CLUSTER.md gives Flint's NATS user; the
// servers below grant nothing more.
var externalPermissions = &natsserver.Permissions{
	Publish: &natsserver.SubjectPermission{Allow: []string{
		"$JS.API.>", "$JS.ACK.>", "$KV.>", "$O.>", "flint.>", "_INBOX.>"}},
	Subscribe: &natsserver.SubjectPermission{Allow: []string{"flint.>", "_INBOX.>"}},
}

// runExternalNATS starts n real nats-servers with JetStream in-process (routed on loopback
// when n > 1, max_payload 8MB as docs/CLUSTER.md asks), each admitting user flint with
// password pass and Flint's permissions: an existing NATS cluster, as an operator runs it. It
// returns once JetStream has a meta leader that knows every server.
func runExternalNATS(t *testing.T, n int, pass string) []*natsserver.Server {
	t.Helper()
	routes := clustertest.FreeAddrs(t, n)
	servers := make([]*natsserver.Server, n)
	for i := range n {
		o := &natsserver.Options{
			ServerName: fmt.Sprintf("nats%d", i+1), Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
			Users: []*natsserver.User{{Username: "flint", Password: pass, Permissions: externalPermissions}},
		}
		if n > 1 {
			host, port, _ := strings.Cut(routes[i], ":")
			o.Cluster = natsserver.ClusterOpts{Name: "ops", Host: host}
			fmt.Sscan(port, &o.Cluster.Port)
			for j, r := range routes {
				if j != i {
					o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: r})
				}
			}
		}
		s, err := natsserver.NewServer(o)
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
		for i, s := range servers {
			eventually(t, time.Minute, fmt.Sprintf("nats server %d knows the meta leader and %d peers", i+1, n), func() error {
				jsz, err := s.Jsz(nil)
				if err != nil {
					return err
				}
				if jsz.Meta == nil || jsz.Meta.Leader == "" || jsz.Meta.Size < n {
					return fmt.Errorf("meta %+v", jsz.Meta)
				}
				return nil
			})
		}
	}
	return servers
}

// externalNode is a Flint node configured for an external NATS at urls, as docs/CLUSTER.md
// starts one.
func externalNode(t *testing.T, name, masterKey string, urls ...string) *clusterNode {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Sandbox = "process"
	cfg.CgroupParent = "flint-test-" + filepath.Base(cfg.DataDir)
	cfg.MasterKey = masterKey
	cfg.Node = name
	cfg.NATS = urls
	cfg.NATSUser, cfg.NATSPassword = "flint", "pa55"
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	return &clusterNode{cfg: cfg, log: log}
}

func sharedMasterKey(t *testing.T) string {
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

func greetingOf(ctx context.Context, c *lambda.Client, name string) (string, error) {
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name)})
	if err != nil {
		return "", err
	}
	if out.FunctionError != nil {
		return "", fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
	}
	var r struct{ Greeting string }
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		return "", fmt.Errorf("payload %s: %w", out.Payload, err)
	}
	return r.Greeting, nil
}

const recorderPy = `
def handler(event, context):
    with open(event["file"], "a") as f:
        f.write(event["id"] + "\n")
`

// recorded waits until the file holds exactly want (sorted).
func recorded(t *testing.T, file string, want ...string) {
	t.Helper()
	slices.Sort(want)
	eventually(t, 30*time.Second, fmt.Sprintf("events %v run", want), func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		got := strings.Fields(string(b))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("ran %v, want %v", got, want)
		}
		return nil
	})
}

// TestExternalNATSCluster runs two Flint nodes on an existing 3-server NATS cluster (user and
// password, the documented permissions only), each connected to another server: what is
// created through one is invoked through the other, async events sent to either run, both
// list each other, everything Flint created has 3 replicas, a node restarted after the other
// wrote serves the write, and a node with a wrong password is refused with a clear error.
func TestExternalNATSCluster(t *testing.T) {
	ns := runExternalNATS(t, 3, "pa55")
	key := sharedMasterKey(t)
	nodes := []*clusterNode{
		externalNode(t, "node1", key, ns[0].ClientURL(), ns[2].ClientURL()),
		externalNode(t, "node2", key, ns[1].ClientURL(), ns[2].ClientURL()),
	}
	// Node 2 has no room for a 128 MB function: every invocation through it must be forwarded
	// to node 1 over NATS (flint.route.* subjects, replies to inboxes), which proves those
	// subjects work with the documented permissions.
	nodes[1].cfg.MemoryBudgetMB = 64
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.srv != nil {
				n.srv.Close()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Started together, as machines would be: both create Flint's assets at once.
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start two nodes on the external NATS: %v", err)
	}
	c1, c2 := newClient(nodes[0].srv.URL()), newClient(nodes[1].srv.URL())

	t.Run("created through node 1, invoked through node 2", func(t *testing.T) {
		createFunction(t, c1, "greeter", "python3.11", "app.handler",
			mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}}), func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "from node 1"}}
			})
		eventually(t, 30*time.Second, "node 2 invokes greeter", func() error {
			got, err := greetingOf(ctx, c2, "greeter")
			if err == nil && got != "from node 1" {
				t.Fatalf("node 2 runs greeting %q", got)
			}
			return err
		})
		if st := nodes[1].srv.Workers().Stats(); st.Starting+st.Idle+st.Busy != 0 {
			t.Errorf("node 2 has %+v environments: the invocation was not forwarded", st)
		}
	})
	t.Run("everything Flint created has 3 replicas", func(t *testing.T) {
		js := nodes[1].srv.JetStream()
		names := js.StreamNames(ctx)
		n := 0
		for name := range names.Name() {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Errorf("stream %s has %d replicas, want 3", name, r)
			}
			n++
		}
		if names.Err() != nil || n < 18 {
			t.Errorf("%d streams (%v), want every bucket, the object store, the async queue and the logs", n, names.Err())
		}
	})
	t.Run("async events sent to either node run", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "events")
		createFunction(t, c2, "recorder", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: recorderPy}}))
		for i, c := range []*lambda.Client{c1, c2} {
			payload := fmt.Sprintf(`{"file":%q,"id":"via-node%d"}`, out, i+1)
			eventually(t, 30*time.Second, fmt.Sprintf("node %d accepts an async event", i+1), func() error {
				_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("recorder"),
					InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
				return err
			})
		}
		recorded(t, out, "via-node1", "via-node2")
	})
	t.Run("each node lists both", func(t *testing.T) {
		for i, n := range nodes {
			eventually(t, 30*time.Second, fmt.Sprintf("node %d lists both nodes up", i+1), func() error {
				up, err := upNodes(n.srv.URL())
				if err != nil {
					return err
				}
				if !slices.Equal(up, []string{"node1", "node2"}) {
					return fmt.Errorf("up: %v", up)
				}
				return nil
			})
		}
	})
	t.Run("node 2 goes on through another server when its own stops", func(t *testing.T) {
		// Node 2 was connected to nats2 (it knows nats3 too): it reconnects, its watches
		// resume there, and it runs what node 1 changes afterwards.
		ns[1].Shutdown()
		ns[1].WaitForShutdown()
		if _, err := c1.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("greeter"),
			Environment:  &types.Environment{Variables: map[string]string{"GREETING": "after nats2 stopped"}},
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "node 2 runs node 1's update through nats3", func() error {
			if got, err := greetingOf(ctx, c2, "greeter"); err != nil || got != "after nats2 stopped" {
				return fmt.Errorf("greeting %q, %v", got, err)
			}
			return nil
		})
	})
	t.Run("a node restarted after the other wrote serves the write", func(t *testing.T) {
		nodes[1].srv.Close()
		if _, err := c1.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("greeter"),
			Environment:  &types.Environment{Variables: map[string]string{"GREETING": "while node 2 was down"}},
		}); err != nil {
			t.Fatal(err)
		}
		if err := nodes[1].start(ctx); err != nil {
			t.Fatalf("restart node 2: %v", err)
		}
		c2 := newClient(nodes[1].srv.URL())
		// Right after its restart node 2 may not have heard node 1's capacity yet (it has no
		// room of its own): a throttle until it has.
		eventually(t, 30*time.Second, "restarted node 2 invokes greeter", func() error {
			got, err := greetingOf(ctx, c2, "greeter")
			if err == nil && got != "while node 2 was down" {
				t.Fatalf("restarted node 2 runs %q; want the update made while it was down", got)
			}
			return err
		})
	})
	t.Run("a second node named node1 does not start while node1 runs", func(t *testing.T) {
		twin := externalNode(t, "node1", key, ns[2].ClientURL())
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := twin.start(short)
		if twin.srv != nil {
			twin.srv.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "node name node1: another Flint node connected to this NATS answers for it") {
			t.Fatalf("start a second node1 = %v, want the name in use", err)
		}
	})
	t.Run("a wrong password is refused at start", func(t *testing.T) {
		bad := externalNode(t, "node3", key, ns[2].ClientURL())
		bad.cfg.NATSPassword = "wrong"
		err := bad.start(ctx)
		if bad.srv != nil {
			bad.srv.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "refused Flint's credentials") || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("start with a wrong password = %v, want the refused credentials (without the password)", err)
		}
		t.Log(err)
	})
}

// TestExternalNATSSingleServer: one Flint node on one existing NATS server (no cluster; the
// password in the URL) just works: functions, sync and async invokes, and a restart that
// finds them again; it is a cluster node all the same (a stream mapping is read under a lease).
func TestExternalNATSSingleServer(t *testing.T) {
	ns := runExternalNATS(t, 1, "pa55")[0]
	n := externalNode(t, "solo", sharedMasterKey(t), strings.Replace(ns.ClientURL(), "nats://", "nats://flint:pa55@", 1))
	n.cfg.NATSUser, n.cfg.NATSPassword = "", ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })
	c := newClient(n.srv.URL())
	createFunction(t, c, "greeter", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "solo"}}
		})
	if got, err := greetingOf(ctx, c, "greeter"); err != nil || got != "solo" {
		t.Fatalf("invoke = %q, %v", got, err)
	}
	out := filepath.Join(t.TempDir(), "events")
	createFunction(t, c, "recorder", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: recorderPy}}))
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("recorder"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(fmt.Sprintf(`{"file":%q,"id":"async"}`, out))}); err != nil {
		t.Fatal(err)
	}
	recorded(t, out, "async")
	// Another node may attach to the same NATS at any time: a stream mapping is read by the
	// node holding its lease, here this one.
	arn := "arn:flint:jetstream:us-east-1:000000000000:stream/solo-orders"
	esm, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("recorder"),
		EventSourceArn: aws.String(arn), StartingPosition: types.EventSourcePositionTrimHorizon})
	if err != nil {
		t.Fatalf("CreateEventSourceMapping of a stream on an external NATS: %v", err)
	}
	eventually(t, 30*time.Second, "the stream mapping enabled", func() error {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: esm.UUID})
		if err != nil {
			return err
		}
		if aws.ToString(got.State) != "Enabled" {
			return fmt.Errorf("state %s", aws.ToString(got.State))
		}
		return nil
	})
	n.srv.Close()
	if err := n.start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got, err := greetingOf(ctx, newClient(n.srv.URL()), "greeter"); err != nil || got != "solo" {
		t.Fatalf("invoke after a restart = %q, %v", got, err)
	}
}

// TestExternalNATSMutualTLS: a Flint node given --nats-tls-ca, --nats-tls-cert and
// --nats-tls-key runs on a NATS server that requires TLS and verifies client certificates;
// without the client certificate it is refused at start.
func TestExternalNATSMutualTLS(t *testing.T) {
	pki := tlscerttest.New(t)
	pair, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
		Users: []*natsserver.User{{Username: "flint", Password: "pa55", Permissions: externalPermissions}},
		TLS:   true, TLSVerify: true, TLSTimeout: 5,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pki.Pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := sharedMasterKey(t)

	noCert := externalNode(t, "plain", key, ns.ClientURL())
	noCert.cfg.NATSTLSCA = pki.CAFile
	err = noCert.start(ctx)
	if noCert.srv != nil {
		noCert.srv.Close()
	}
	// TLS 1.3 clients learn of the refusal after their handshake: as an alert ("certificate
	// required") or as the connection closing under their first write.
	if err == nil || !strings.Contains(err.Error(), "tls") || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start without a client certificate = %v, want the server's refusal at once", err)
	}
	t.Log(err)

	n := externalNode(t, "mtls", key, ns.ClientURL())
	n.cfg.NATSTLSCA, n.cfg.NATSTLSCert, n.cfg.NATSTLSKey = pki.CAFile, pki.ClientCert, pki.ClientKey
	if err := n.start(ctx); err != nil {
		t.Fatalf("start with the CA and a client certificate: %v", err)
	}
	t.Cleanup(func() { n.srv.Close() })
	c := newClient(n.srv.URL())
	createFunction(t, c, "greeter", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "over mTLS"}}
		})
	if got, err := greetingOf(ctx, c, "greeter"); err != nil || got != "over mTLS" {
		t.Fatalf("invoke = %q, %v", got, err)
	}
}
