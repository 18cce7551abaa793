//go:build natsexp

package store

// TestProtoCluster is a prototype for the cluster issue (flint serve --node --cluster-listen
// --join), not a test of production code: it shows how embedded nats-servers configured the
// way Flint would configure them form a JetStream cluster, keep an R3 KV bucket working when a
// node dies, and refuse a route with the wrong password. docs/notes/nats-cluster-findings.md
// explains each choice.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// protoNode is one Flint node's embedded server.
type protoNode struct {
	name     string
	dir      string
	port     int      // cluster (route) port
	join     []string // other nodes' host:port (--join)
	password string   // the route password all nodes share
	auth     *natsAuth
	s        *server.Server
}

func (n *protoNode) start(t *testing.T) {
	t.Helper()
	var routes []*url.URL
	for _, hp := range n.join {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: hp, User: url.UserPassword("flint-route", n.password)})
	}
	auth, err := newNATSAuth("")
	if err != nil {
		t.Fatal(err)
	}
	o := &server.Options{
		ServerName: n.name, // must be unique and stable: the meta group's peer id is a hash of it
		JetStream:  true,
		StoreDir:   n.dir,
		NoSigs:     true,
		NoLog:      true,
		// Routing starts only after the client accept loop does (server.go StartRouting waits
		// for clientListenReady), so a clustered node cannot use DontListen. The client
		// listener stays on loopback and Flint's custom auth admits only in-process connections.
		Host:                       "127.0.0.1",
		Port:                       server.RANDOM_PORT,
		CustomClientAuthentication: auth,
		Cluster: server.ClusterOpts{
			Name: "flint", Host: "127.0.0.1", Port: n.port,
			// Routes authenticate here, not in CustomClientAuthentication (auth.go
			// checkAuthentication: ROUTER -> isRouterAuthorized).
			Username: "flint-route", Password: n.password,
			// Do not gossip the loopback client URL to outside clients of other nodes.
			NoAdvertise: true,
		},
		Routes: routes,
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("%s: not ready for connections", n.name)
	}
	n.s, n.auth = s, auth
}

func (n *protoNode) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

// conn is a Flint-style in-process connection (internal token over the pipe).
func (n *protoNode) conn(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(n.s), nats.Token(n.auth.internal), nats.Name("flint"))
	if err != nil {
		t.Fatalf("%s: in-process connect: %v", n.name, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// metaReady reports whether n has a current meta layer with a known leader and size peers:
// what a Flint node must wait for before opening its buckets.
func (n *protoNode) metaReady(size int) error {
	if h := n.s.Healthz(&server.HealthzOptions{JSMetaOnly: true}); h.StatusCode != 200 {
		return fmt.Errorf("%s: %s", n.name, h.Error)
	}
	jsz, err := n.s.Jsz(nil)
	if err != nil {
		return err
	}
	if jsz.Meta == nil || jsz.Meta.Leader == "" || jsz.Meta.Size < size {
		return fmt.Errorf("%s: meta %+v, want a leader and %d peers", n.name, jsz.Meta, size)
	}
	return nil
}

func waitFor(t *testing.T, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	t0 := time.Now()
	var err error
	for time.Since(t0) < d {
		if err = f(); err == nil {
			return time.Since(t0)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
	return 0
}

func TestProtoCluster(t *testing.T) {
	const password = "route-secret"
	ports := protoClusterPorts(t, 4)
	nodes := make([]*protoNode, 3)
	for i := range nodes {
		n := &protoNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), port: ports[i], password: password}
		for j := range nodes {
			if j != i { // --join lists the others: the meta group expects len(routes) = 2 peers at first boot
				n.join = append(n.join, fmt.Sprintf("127.0.0.1:%d", ports[j]))
			}
		}
		nodes[i] = n
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})

	// 1. Three nodes start together (as three machines would) and form one meta group.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.start(t) }()
	}
	wg.Wait()
	d := waitFor(t, 60*time.Second, "meta group of 3", func() error {
		for _, n := range nodes {
			if err := n.metaReady(3); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("meta group of 3 ready %v after the servers were", d)

	// 2. Every node opens the R3 bucket and the object store at once, as each node's Open would,
	// create first and update only if it exists: concurrent CreateOrUpdate* of a new stream gets
	// no reply at all (see the notes). Most nodes are not the meta leader: their JetStream API
	// requests cross the routes to it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kvCfg := jetstream.KeyValueConfig{Bucket: "proto", Replicas: 3, History: 1}
	objCfg := jetstream.ObjectStoreConfig{Bucket: "proto_code", Replicas: 3}
	errs := make(chan error, 2*len(nodes))
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			js := n.conn(t)
			errs <- protoOpen(ctx, n.name+" kv", func(ctx context.Context) error {
				_, err := js.CreateKeyValue(ctx, kvCfg)
				if errors.Is(err, jetstream.ErrBucketExists) {
					_, err = js.UpdateKeyValue(ctx, kvCfg)
				}
				return err
			})
			errs <- protoOpen(ctx, n.name+" object store", func(ctx context.Context) error {
				_, err := js.CreateObjectStore(ctx, objCfg)
				if errors.Is(err, jetstream.ErrBucketExists) {
					_, err = js.UpdateObjectStore(ctx, objCfg)
				}
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var client *protoNode
	for _, n := range nodes {
		if !n.s.JetStreamIsLeader() {
			client = n
		}
	}
	js := client.conn(t)
	kv, err := js.KeyValue(ctx, "proto")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := kv.Put(ctx, fmt.Sprintf("before.%d", i), []byte("v")); err != nil {
			t.Fatalf("put before: %v", err)
		}
	}
	st, err := js.Stream(ctx, "KV_proto")
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	waitFor(t, 30*time.Second, "3 current replicas", func() error {
		if info, err = st.Info(ctx); err != nil {
			return err
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("cluster %+v", info.Cluster)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return fmt.Errorf("replica %s not current", r.Name)
			}
		}
		return nil
	})
	t.Logf("KV_proto: leader %s, replicas %s %s; in-process client on %s", info.Cluster.Leader,
		info.Cluster.Replicas[0].Name, info.Cluster.Replicas[1].Name, client.name)

	// 3. The bucket's stream leader dies: reads and writes continue through the other two.
	var victim *protoNode
	var survivors []*protoNode
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			victim = n
		} else {
			survivors = append(survivors, n)
		}
	}
	victim.stop()
	t0 := time.Now()
	kvs := make([]jetstream.KeyValue, len(survivors))
	for i, n := range survivors {
		sjs := n.conn(t)
		// A JetStream API request that reaches no leader (the stream's just died) gets no
		// answer at all: each attempt needs its own short deadline.
		waitFor(t, 30*time.Second, n.name+": open bucket after the kill", func() error {
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			defer acancel()
			kvs[i], err = sjs.KeyValue(actx, "proto")
			return err
		})
	}
	for i := range 50 {
		w := kvs[i%2]
		waitFor(t, 30*time.Second, "put after the kill", func() error {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			defer pcancel()
			_, err := w.Put(pctx, fmt.Sprintf("after.%d", i), []byte("v"))
			return err
		})
	}
	t.Logf("%s (stream leader) stopped: 50 puts through %s and %s done %v later", victim.name,
		survivors[0].name, survivors[1].name, time.Since(t0))
	for _, r := range kvs {
		for _, key := range []string{"before.0", "before.19", "after.0", "after.49"} {
			// A direct get may be answered by a copy a moment behind the write (any current
			// replica answers direct gets): poll, with a bound.
			waitFor(t, 10*time.Second, "get "+key+" after the kill", func() error {
				_, err := r.Get(ctx, key)
				return err
			})
		}
	}
	for _, n := range survivors {
		waitFor(t, 30*time.Second, n.name+": meta with 2 of 3", func() error { return n.metaReady(3) })
	}

	// 4. A server whose route password is wrong is refused by both survivors; the victim,
	// restarted with the right one, rejoins and catches up. (Same addresses, same routes: only
	// the password differs, so the refusal is the password's.)
	intruder := &protoNode{name: "intruder", dir: t.TempDir(), port: ports[3], password: "wrong",
		join: []string{survivors[0].s.ClusterAddr().String(), survivors[1].s.ClusterAddr().String()}}
	intruder.start(t)
	defer intruder.stop()
	victim.start(t)
	// While the victim rejoins (seconds), the intruder keeps retrying its routes: neither
	// survivor may ever list it. (The intruder itself may list a route for an instant: the
	// soliciting side registers it before the other side's -ERR arrives.)
	waitFor(t, 60*time.Second, victim.name+" rejoins", func() error {
		for _, n := range survivors {
			if routes := routeNames(t, n.s); routes["intruder"] {
				t.Fatalf("%s accepted a route from the intruder: %v", n.name, routes)
			}
		}
		if err := victim.metaReady(3); err != nil {
			return err
		}
		if !victim.s.JetStreamIsStreamCurrent(globalAccountName, "KV_proto") {
			return errors.New("KV_proto not current on " + victim.name)
		}
		return nil
	})
	if err := intruder.metaReady(1); err == nil {
		t.Fatal("the intruder found a meta leader")
	}
	if routes := routeNames(t, survivors[0].s); !routes[victim.name] {
		t.Fatalf("%s has no route to the restarted %s: %v", survivors[0].name, victim.name, routes)
	}
	jsz, err := survivors[0].s.Jsz(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range jsz.Meta.Replicas {
		if p.Name == "intruder" {
			t.Fatalf("intruder joined the meta group: %+v", jsz.Meta)
		}
	}
	vjs := victim.conn(t)
	vkv, err := vjs.KeyValue(ctx, "proto")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vkv.Get(ctx, "after.49"); err != nil {
		t.Fatalf("get on the restarted node: %v", err)
	}
}

const globalAccountName = "$G"

// protoOpen runs open with a deadline per attempt, retrying JetStream API errors (e.g. 10005 no
// suitable peers, while the meta leader has yet to hear from a node) but failing on a request
// that got no reply at all.
func protoOpen(ctx context.Context, what string, open func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := open(actx)
		cancel()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr) && ctx.Err() == nil:
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("open %s: %w", what, err)
		}
	}
}
