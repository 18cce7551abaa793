package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/tlscert"
)

func testKeyring(t *testing.T) *crypt.Keyring {
	t.Helper()
	b := make([]byte, crypt.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	k, err := crypt.LoadKeyring("", base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type clusterNode struct {
	name, dir, listen string
	join              []string
	keys              *crypt.Keyring
	tls               *tls.Config
}

func (n clusterNode) open(ctx context.Context, t *testing.T) (*Store, error) {
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", n.name)
	return Open(ctx, Options{Dir: n.dir, Keyring: n.keys, Log: log, Cluster: &ClusterOptions{
		Node: n.name, Listen: n.listen, Join: n.join, Replicas: 3, TLS: n.tls}})
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestClusterStore: three stores started together as cluster nodes (TLS routes, one shared
// master key) form one JetStream cluster; every asset Flint opens is R3; a write through one
// node is read through another; a node with another master key, and one with the right key but
// without the cluster's TLS, are refused; a cluster node's data directory is refused
// standalone.
func TestClusterStore(t *testing.T) {
	keys := testKeyring(t)
	certFile, keyFile, err := tlscert.SelfSigned(t.TempDir()) // covers 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	routeTLS, err := RouteTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ports := protoClusterPorts(t, 5)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	nodes := make([]clusterNode, 3)
	for i := range nodes {
		nodes[i] = clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), listen: addr(i), keys: keys, tls: routeTLS}
		for j := range nodes {
			if j != i {
				nodes[i].join = append(nodes[i].join, addr(j))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stores := make([]*Store, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = n.open(ctx, t) }()
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(s.Close)
		}
		if errs[i] != nil {
			t.Fatalf("open %s: %v", nodes[i].name, errs[i])
		}
	}
	t.Logf("3 nodes open %v after starting together", time.Since(t0))

	// Every stream behind Flint's buckets and object store is R3, whichever node opened it.
	names := stores[1].js.StreamNames(ctx)
	n := 0
	for name := range names.Name() {
		st, err := stores[1].js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
		n++
	}
	if names.Err() != nil || n < 15 {
		t.Fatalf("listed %d streams (%v), want Flint's 15 buckets and the object store", n, names.Err())
	}
	// A stale revision is a conflict (ErrConflict, which writers retry on) on R3 buckets too,
	// where JetStream reports it with another code than on a single copy when the updates are
	// in flight together: of 15 concurrent updates at one revision one wins, the others conflict.
	al := &lambda.Alias{Name: "live", FunctionVersion: "1"}
	rev, err := stores[0].Aliases().Create(ctx, "fn", al)
	if err != nil {
		t.Fatal(err)
	}
	var won atomic.Int32
	for i := range 15 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%3].Aliases().Update(ctx, "fn", al, rev)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, ErrConflict):
				t.Errorf("update at a stale revision on R3: %v, want ErrConflict", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d of 15 updates at one revision won, want 1", won.Load())
	}
	// A stream another part creates later through the store's JetStream is R3 too, and so is a
	// create-or-update from every node at once (no request goes unanswered).
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}}); err != nil {
				t.Errorf("%s: create-or-update LATER: %v", s.ns.Name(), err)
			}
		}()
	}
	wg.Wait()
	if st, err := stores[0].js.Stream(ctx, "LATER"); err != nil || st.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("LATER: %v, want 3 replicas", err)
	}
	// The retries would hide it, so count the requests that went unanswered. Concurrent
	// create-or-update of new assets from every node leaves 6 or 7 per node unanswered here
	// (more in the research notes); create-first leaves none, apart from a rare one when the
	// young meta group changes leader with requests in flight (seen once in a dozen runs, on
	// two nodes at once), which is what the retries are for.
	for _, s := range stores {
		if n := s.js.(*replicated).unanswered.Load(); n > 1 {
			t.Errorf("%s: %d JetStream requests went unanswered while the nodes opened their assets", s.ns.Name(), n)
		}
	}

	// Read-your-writes: once a write has returned, a read of it through any node sees it (a
	// client creates a function through one node and configures it at once). Each round
	// creates a key, updates it and reads both back through every node, while a copy may still
	// be applying them.
	for i := range 150 {
		w := stores[i%3]
		key := fmt.Sprintf("ryw%d", i)
		a := &lambda.Alias{Name: "live", FunctionVersion: "1"}
		rev, err := w.Aliases().Create(ctx, key, a)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range stores {
			if got, err := r.Aliases().Get(ctx, key, "live"); err != nil || got.Revision != rev {
				t.Fatalf("round %d: alias created through n%d (revision %d), read through n%d: %+v, %v", i, i%3+1, rev, j+1, got, err)
			}
			if got, err := r.Aliases().List(ctx, key); err != nil || len(got) != 1 {
				t.Fatalf("round %d: alias created through n%d, listed through n%d: %d aliases, %v", i, i%3+1, j+1, len(got), err)
			}
		}
		a.FunctionVersion = "2"
		if rev, err = w.Aliases().Update(ctx, key, a, rev); err != nil {
			t.Fatal(err)
		}
		for j, r := range stores {
			if got, err := r.Aliases().Get(ctx, key, "live"); err != nil || got.Revision != rev || got.FunctionVersion != "2" {
				t.Fatalf("round %d: alias updated through n%d (revision %d), read through n%d: %+v, %v", i, i%3+1, rev, j+1, got, err)
			}
		}
		if _, err := w.Aliases().Delete(ctx, key, "live"); err != nil {
			t.Fatal(err)
		}
		for j, r := range stores {
			if got, err := r.Aliases().Get(ctx, key, "live"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("round %d: alias deleted through n%d, read through n%d: %+v, %v; want ErrNotFound", i, i%3+1, j+1, got, err)
			}
		}
		if _, err := w.Aliases().Create(ctx, key, a); err != nil {
			t.Fatalf("round %d: alias created again through n%d at once: %v", i, i%3+1, err)
		}
	}
	// And so for code packages: stored, read through every node, deleted, and stored again
	// through another node (a copy behind the deletion made Put think it still there).
	for i := range 30 {
		w, w2 := stores[i%3], stores[(i+1)%3]
		key, zip := fmt.Sprintf("code%d", i), []byte(fmt.Sprintf("zip %d", i))
		for round, put := range []*Store{w, w2} {
			if err := put.Code().Put(ctx, key, zip); err != nil {
				t.Fatal(err)
			}
			for j, r := range stores {
				if got, err := r.Code().Get(ctx, key); err != nil || string(got) != string(zip) {
					t.Fatalf("code %d stored (%d) through a node, read through n%d: %q, %v", i, round+1, j+1, got, err)
				}
			}
			if err := put.Code().Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
	}

	if _, err := stores[0].Secrets().Put(ctx, "k", json.RawMessage(`"v1"`)); err != nil {
		t.Fatal(err)
	}
	got, _, err := stores[2].Secrets().Get(ctx, "k")
	if err != nil || string(got) != `"v1"` {
		t.Fatalf("read through n3 = %s, %v; want the write through n1", got, err)
	}

	// A node restarted after the others wrote has its copy caught up when Open returns: its
	// caches (watches) may read from that copy.
	stores[2].Close()
	for i := range 2000 {
		if _, err := stores[i%2].Secrets().Put(ctx, fmt.Sprintf("k%d", i%100), json.RawMessage(`"v"`)); err != nil {
			t.Fatal(err)
		}
	}
	if stores[2], err = nodes[2].open(ctx, t); err != nil {
		t.Fatalf("reopen n3: %v", err)
	}
	t.Cleanup(stores[2].Close)
	local, err := localStreams(stores[2].ns)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stores[0].js.Stream(ctx, "KV_flint_secrets")
	if err != nil {
		t.Fatal(err)
	}
	if want := st.CachedInfo().State.LastSeq; local["KV_flint_secrets"] < want {
		t.Errorf("reopened n3's copy of KV_flint_secrets is at %d, the leader's at %d", local["KV_flint_secrets"], want)
	}

	// Intruders dial all three nodes: one with another master key (so another route secret),
	// one with the right key but no TLS. Neither is ever let in.
	intruders := []clusterNode{
		{name: "wrongkey", dir: t.TempDir(), listen: addr(3), join: []string{addr(0), addr(1), addr(2)}, keys: testKeyring(t), tls: routeTLS},
		{name: "notls", dir: t.TempDir(), listen: addr(4), join: []string{addr(0), addr(1), addr(2)}, keys: keys},
	}
	ictx, icancel := context.WithTimeout(ctx, 4*time.Second)
	defer icancel()
	ierrs := make([]error, len(intruders))
	for i, n := range intruders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.open(ictx, t)
			if s != nil {
				s.Close()
			}
			ierrs[i] = err
		}()
	}
	for ictx.Err() == nil {
		for _, s := range stores {
			if routes := routeNames(t, s.ns); routes["wrongkey"] || routes["notls"] {
				t.Fatalf("%s accepted an intruder's route: %v", s.ns.Name(), routes)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	for i, err := range ierrs {
		if err == nil || !strings.Contains(err.Error(), "waiting for the cluster") {
			t.Errorf("intruder %s: Open = %v, want it still waiting for the cluster", intruders[i].name, err)
		}
	}
	jsz, err := stores[0].ns.Jsz(nil)
	if err != nil {
		t.Fatal(err)
	}
	if jsz.Meta.Size != 3 {
		t.Errorf("meta group has %d peers after the intruders, want 3: %+v", jsz.Meta.Size, jsz.Meta)
	}

	// A cluster node's data directory opened standalone is refused.
	stores[2].Close()
	_, err = Open(ctx, Options{Dir: nodes[2].dir, Keyring: keys})
	if !errors.Is(err, ErrModeMismatch) {
		t.Fatalf("standalone open of a cluster node's data = %v, want ErrModeMismatch", err)
	}
	// And so is the same directory under another node name.
	renamed := nodes[2]
	renamed.name = "n9"
	if _, err := renamed.open(ctx, t); !errors.Is(err, ErrModeMismatch) || !strings.Contains(err.Error(), "belongs to cluster node n3") {
		t.Fatalf("open of n3's data as n9 = %v, want ErrModeMismatch naming n3", err)
	}
}

// TestClusterRefusesStandaloneData: a data directory a standalone Flint used is refused as a
// cluster node's, and left as it was (JetStream would delete its streams: nats-server #5467).
func TestClusterRefusesStandaloneData(t *testing.T) {
	keys := testKeyring(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{Dir: dir, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secrets().Put(ctx, "k", json.RawMessage(`"v"`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ports := protoClusterPorts(t, 2)
	n := clusterNode{name: "n1", dir: dir, listen: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		join: []string{fmt.Sprintf("127.0.0.1:%d", ports[1])}, keys: keys}
	if _, err := n.open(ctx, t); !errors.Is(err, ErrModeMismatch) || !strings.Contains(err.Error(), "empty data directory") {
		t.Fatalf("cluster open of standalone data = %v, want ErrModeMismatch saying what to do", err)
	}
	s, err = Open(ctx, Options{Dir: dir, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _, err := s.Secrets().Get(ctx, "k"); err != nil || string(got) != `"v"` {
		t.Fatalf("standalone data after the refusal = %s, %v", got, err)
	}
}

// TestClusterTwoNodes: two nodes form a cluster with one copy of each asset (config.Replicas
// gives 1 for two nodes) and see each other's writes.
func TestClusterTwoNodes(t *testing.T) {
	keys := testKeyring(t)
	ports := protoClusterPorts(t, 2)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stores := make([]*Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := clusterNode{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), listen: addr(i), join: []string{addr(1 - i)}, keys: keys}
			log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			stores[i], errs[i] = Open(ctx, Options{Dir: n.dir, Keyring: n.keys, Log: log, Cluster: &ClusterOptions{
				Node: n.name, Listen: n.listen, Join: n.join, Replicas: 1}})
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(s.Close)
		}
		if errs[i] != nil {
			t.Fatalf("open n%d: %v", i+1, errs[i])
		}
	}
	st, err := stores[0].js.Stream(ctx, "KV_flint_functions")
	if err != nil || st.CachedInfo().Config.Replicas != 1 {
		t.Fatalf("KV_flint_functions: %v, want 1 replica", err)
	}
	if _, err := stores[1].Secrets().Put(ctx, "k", json.RawMessage(`"two"`)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := stores[0].Secrets().Get(ctx, "k"); err != nil || string(got) != `"two"` {
		t.Fatalf("read through n1 = %s, %v; want the write through n2", got, err)
	}
}

func protoClusterPorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// routeNames are the server names at the other end of s's routes.
func routeNames(t *testing.T, s *server.Server) map[string]bool {
	t.Helper()
	rz, err := s.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rz.Routes {
		names[r.RemoteName] = true
	}
	return names
}
