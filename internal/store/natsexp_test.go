//go:build natsexp

package store

// Experiments behind docs/notes/nats-cluster-findings.md. They print what they observe
// (t.Logf) rather than assert: run one at a time, e.g.
//
//	go test -tags natsexp -count=1 -v ./internal/store/ -run TestExpLatency
//
// EXPLOG=regexp prints the embedded servers' log lines that match (debug level).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type tlog struct {
	t    testing.TB
	name string
	re   *regexp.Regexp
	mu   sync.Mutex
	done bool
}

func (l *tlog) logf(lvl, f string, a ...any) {
	s := fmt.Sprintf(f, a...)
	if l.re != nil && !l.re.MatchString(s) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	fmt.Fprintf(os.Stderr, "%s %s [%s] %s\n", time.Now().Format("15:04:05.000"), l.name, lvl, s)
}
func (l *tlog) Noticef(f string, a ...any) { l.logf("INF", f, a...) }
func (l *tlog) Warnf(f string, a ...any)   { l.logf("WRN", f, a...) }
func (l *tlog) Fatalf(f string, a ...any)  { l.logf("FTL", f, a...) }
func (l *tlog) Errorf(f string, a ...any)  { l.logf("ERR", f, a...) }
func (l *tlog) Debugf(f string, a ...any)  { l.logf("DBG", f, a...) }
func (l *tlog) Tracef(f string, a ...any)  {}

type xnode struct {
	name  string
	port  int
	dir   string
	s     *server.Server
	user  string
	pass  string
	route []string // host:port of routes
	alone bool     // standalone: no cluster at all
}

func freePorts(t testing.TB, n int) []int {
	var ps []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ps
}

var logRE = regexp.MustCompile(os.Getenv("EXPLOG"))

func (n *xnode) start(t testing.TB) {
	o := &server.Options{ServerName: n.name, JetStream: true, StoreDir: n.dir,
		Host: "127.0.0.1", Port: -1, NoSigs: true, Debug: os.Getenv("EXPLOG") != ""}
	o.Tags = append(o.Tags, "node:"+n.name)
	if !n.alone {
		o.Cluster = server.ClusterOpts{Name: "flint", Host: "127.0.0.1", Port: n.port, Username: n.user, Password: n.pass}
		for _, r := range n.route {
			u, _ := url.Parse(fmt.Sprintf("nats-route://%s:%s@%s", n.user, n.pass, r))
			o.Routes = append(o.Routes, u)
		}
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EXPLOG") != "" {
		s.SetLogger(&tlog{t: t, name: n.name, re: logRE}, true, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	n.s = s
}

func (n *xnode) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

// mkNodes builds n node descriptions; each routes to all (self included) if all, else to others.
func mkNodes(t testing.TB, n int, all bool) []*xnode {
	ps := freePorts(t, n)
	var ns []*xnode
	for i := 0; i < n; i++ {
		x := &xnode{name: fmt.Sprintf("n%d", i+1), port: ps[i], dir: t.TempDir(), user: "r", pass: "secret"}
		for j := 0; j < n; j++ {
			if all || j != i {
				x.route = append(x.route, fmt.Sprintf("127.0.0.1:%d", ps[j]))
			}
		}
		ns = append(ns, x)
	}
	t.Cleanup(func() {
		for _, x := range ns {
			x.stop()
		}
	})
	return ns
}

func metaLeader(ns []*xnode) string {
	for _, x := range ns {
		if x.s != nil && x.s.JetStreamIsLeader() {
			return x.name
		}
	}
	return ""
}

func metaHealthy(x *xnode) error {
	h := x.s.Healthz(&server.HealthzOptions{JSMetaOnly: true})
	if h.StatusCode != 200 {
		return fmt.Errorf("%d %s", h.StatusCode, h.Error)
	}
	return nil
}

// waitMeta polls until every running node reports a healthy meta layer; returns elapsed or -1.
func expWaitMeta(ns []*xnode, d time.Duration) time.Duration {
	t0 := time.Now()
	for time.Since(t0) < d {
		ok := true
		for _, x := range ns {
			if x.s != nil && metaHealthy(x) != nil {
				ok = false
			}
		}
		if ok {
			return time.Since(t0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

func peers(ns []*xnode) []string {
	for _, x := range ns {
		if x.s != nil && x.s.JetStreamIsLeader() {
			return x.s.JetStreamClusterPeers()
		}
	}
	return nil
}

func conn(t testing.TB, x *xnode) (*nats.Conn, jetstream.JetStream) {
	nc, err := nats.Connect("", nats.InProcessServer(x.s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func ctxT(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	time.AfterFunc(d, cancel)
	return ctx
}

// Exp 1: 2 of 3 configured nodes at first boot, routes to others only vs all incl. self.
func TestExpTwoOfThree(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			ns := mkNodes(t, 3, all)
			ns[0].start(t)
			ns[1].start(t)
			d := expWaitMeta(ns, 20*time.Second)
			t.Logf("2 of 3 up: meta healthy after %v leader=%q peers=%v", d, metaLeader(ns), peers(ns))
			_, js := conn(t, ns[0])
			_, err := js.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "one", Replicas: 1})
			t.Logf("2 of 3 up: create R1: %v", err)
			_, err = js.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "two", Replicas: 3})
			t.Logf("2 of 3 up: create R3: %v", err)
			t0 := time.Now()
			ns[2].start(t)
			d = expWaitMeta(ns, 20*time.Second)
			t.Logf("3rd up: meta healthy after %v leader=%q peers=%v", d, metaLeader(ns), peers(ns))
			for time.Since(t0) < 20*time.Second && len(peers(ns)) < 3 {
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("3rd up: peers=3 after %v", time.Since(t0))
			_, err = js.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "three", Replicas: 3})
			t.Logf("3rd up: create R3: %v after %v", err, time.Since(t0))
		})
	}
}

// Exp 2: all 3 start together; time to meta healthy.
func TestExpThreeTogether(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			ns := mkNodes(t, 3, all)
			t0 := time.Now()
			var wg sync.WaitGroup
			for _, x := range ns {
				wg.Add(1)
				go func() { defer wg.Done(); x.start(t) }()
			}
			wg.Wait()
			d := expWaitMeta(ns, 30*time.Second)
			t.Logf("3 together: servers ready %v; meta healthy on all after %v more; leader=%q", time.Since(t0)-d, d, metaLeader(ns))
			for time.Since(t0) < 20*time.Second && len(peers(ns)) < 3 {
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("peers=%v after %v", peers(ns), time.Since(t0))
			_, js := conn(t, ns[1])
			_, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "three", Replicas: 3})
			t.Logf("create R3 %v after %v", err, time.Since(t0))
		})
	}
}

// Exp 3: lone node with cluster port and self-route only.
func TestExpLone(t *testing.T) {
	ns := mkNodes(t, 1, true)
	ns[0].start(t)
	d := expWaitMeta(ns, 15*time.Second)
	t.Logf("lone clustered node (routes=[self]) meta healthy after %v: %v", d, metaHealthy(ns[0]))
	// Cluster port but no routes at all: "Can't start JetStream: JetStream cluster requires
	// configured routes" is logged as Fatal (but NoSigs/embedded: no exit) and the server never
	// becomes ready.
	o := &server.Options{ServerName: "solo", JetStream: true, StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, NoSigs: true,
		Cluster: server.ClusterOpts{Name: "flint", Host: "127.0.0.1", Port: -1}}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLogger(&tlog{t: t, name: "solo", re: regexp.MustCompile("JetStream")}, false, false)
	go s.Start()
	t.Logf("cluster port, no routes: ready=%v JetStreamEnabled=%v", s.ReadyForConnections(5*time.Second), s.JetStreamEnabled())
	s.Shutdown()
}

// Exp 4: standalone node with data, restarted clustered with two new nodes.
func TestExpStandaloneToCluster(t *testing.T) {
	ns := mkNodes(t, 3, true)
	ns[0].alone = true
	ns[0].start(t)
	_, js := conn(t, ns[0])
	kv, err := js.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "one"})
	if err != nil {
		t.Fatal(err)
	}
	kv.Put(ctxT(time.Second), "k", []byte("v"))
	ns[0].stop()
	ns[0].alone = false
	for _, x := range ns {
		x.start(t)
	}
	t.Logf("meta healthy after %v", expWaitMeta(ns, 30*time.Second))
	time.Sleep(3 * time.Second)
	for _, x := range ns {
		_, js := conn(t, x)
		_, err := js.KeyValue(ctxT(5*time.Second), "one")
		t.Logf("%s: bucket one after restart clustered: %v", x.name, err)
	}
	t.Logf("files: %v", walk(ns[0].dir))
	time.Sleep(33 * time.Second)
	t.Logf("files after 36s: %v", walk(ns[0].dir))
}

func walk(dir string) []string {
	var out []string
	ents, _ := os.ReadDir(dir + "/jetstream/$G/streams")
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Exp 5: formed cluster; R1 scale to R3 for KV and object store; kill one; restart all but one.
func TestExpFormedKill(t *testing.T) {
	ns := mkNodes(t, 3, true)
	var wg sync.WaitGroup
	for _, x := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); x.start(t) }()
	}
	wg.Wait()
	t.Logf("meta healthy after %v leader=%s", expWaitMeta(ns, 30*time.Second), metaLeader(ns))
	_, js := conn(t, ns[0])
	kv1, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "one", Replicas: 1})
	t.Logf("R1 create: %v", err)
	kv1.Put(ctxT(time.Second), "k", []byte("v"))
	ob, err := js.CreateOrUpdateObjectStore(ctxT(10*time.Second), jetstream.ObjectStoreConfig{Bucket: "obj", Replicas: 1})
	t.Logf("obj R1 create: %v", err)
	_, err = ob.PutBytes(ctxT(5*time.Second), "o", []byte("data"))
	t.Logf("obj put: %v", err)
	kv1, err = js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "one", Replicas: 3})
	t.Logf("KV R1->R3 update: %v", err)
	ob, err = js.CreateOrUpdateObjectStore(ctxT(10*time.Second), jetstream.ObjectStoreConfig{Bucket: "obj", Replicas: 3})
	t.Logf("obj R1->R3 update: %v", err)
	time.Sleep(2 * time.Second)
	for _, b := range []string{"KV_one", "OBJ_obj"} {
		st, err := js.Stream(ctxT(5*time.Second), b)
		if err != nil {
			t.Logf("%s: %v", b, err)
			continue
		}
		ci := st.CachedInfo()
		var reps []string
		for _, r := range ci.Cluster.Replicas {
			reps = append(reps, fmt.Sprintf("%s current=%v", r.Name, r.Current))
		}
		t.Logf("%s replicas=%d leader=%s peers=%v msgs=%d", b, ci.Config.Replicas, ci.Cluster.Leader, reps, ci.State.Msgs)
	}
	// A node starting with the old (Replicas unset) config scales the bucket back down.
	js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "one"})
	if st, err := js.Stream(ctxT(5*time.Second), "KV_one"); err == nil {
		t.Logf("KV_one after CreateOrUpdateKeyValue without Replicas: replicas=%d", st.CachedInfo().Config.Replicas)
	}
	// Kill the meta leader (worst case).
	var victim int
	for i, x := range ns {
		if x.s.JetStreamIsLeader() {
			victim = i
		}
	}
	kv, _ := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "three", Replicas: 3})
	kv.Put(ctxT(time.Second), "before", []byte("x"))
	rest := []*xnode{}
	for i, x := range ns {
		if i != victim {
			rest = append(rest, x)
		}
	}
	_, js2 := conn(t, rest[0])
	kv2, _ := js2.KeyValue(ctxT(5*time.Second), "three")
	t.Logf("killing %s (meta leader)", ns[victim].name)
	t0 := time.Now()
	ns[victim].stop()
	var firstOK time.Duration
	fails := 0
	for i := 0; i < 200; i++ {
		_, err := kv2.Put(ctxT(2*time.Second), fmt.Sprintf("k%d", i), []byte("x"))
		if err != nil {
			fails++
			if fails < 4 {
				t.Logf("put %d after kill: %v (%v)", i, err, time.Since(t0))
			}
		} else if firstOK == 0 {
			firstOK = time.Since(t0)
		}
	}
	t.Logf("after kill: first ok put at %v; %d/200 failed; total %v", firstOK, fails, time.Since(t0))
	e, err := kv2.Get(ctxT(2*time.Second), "before")
	t.Logf("get before: %v %v", e != nil, err)
	t.Logf("meta after kill: healthy in %v leader=%s", expWaitMeta(rest, 30*time.Second), metaLeader(rest))
	_, err = js2.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "new3", Replicas: 3})
	t.Logf("create R3 with 2 of 3: %v", err)
	_, err = js2.CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: "new1", Replicas: 1})
	t.Logf("create R1 with 2 of 3: %v", err)
	// Full restart of the two survivors only.
	for _, x := range rest {
		x.stop()
	}
	t0 = time.Now()
	for _, x := range rest {
		x.start(t)
	}
	t.Logf("2 of 3 restarted after formed: meta healthy after %v leader=%s", expWaitMeta(rest, 30*time.Second), metaLeader(rest))
	_, js3 := conn(t, rest[1])
	kv3, err := js3.KeyValue(ctxT(5*time.Second), "three")
	if err == nil {
		_, err = kv3.Put(ctxT(10*time.Second), "after-restart", []byte("x"))
	}
	t.Logf("R3 put after 2-of-3 restart: %v (%v)", err, time.Since(t0))
}

// Exp 6: route auth.
func TestExpRouteAuth(t *testing.T) {
	ns := mkNodes(t, 2, true)
	ns[1].pass = "wrong"
	ns[0].start(t)
	ns[1].start(t)
	time.Sleep(3 * time.Second)
	t.Logf("routes n1=%d n2=%d", ns[0].s.NumRoutes(), ns[1].s.NumRoutes())
}

// Exp 7: put latency R1 (local / remote leader) vs R3 through in-process conn on a non-meta-leader node.
func TestExpLatency(t *testing.T) {
	ns := mkNodes(t, 3, true)
	var wg sync.WaitGroup
	for _, x := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); x.start(t) }()
	}
	wg.Wait()
	expWaitMeta(ns, 30*time.Second)
	for time.Now(); len(peers(ns)) < 3; {
		time.Sleep(20 * time.Millisecond)
	}
	var x *xnode
	for _, n := range ns {
		if !n.s.JetStreamIsLeader() {
			x = n
		}
	}
	_, js := conn(t, x)
	seen := map[string]bool{}
	for i := 0; i < 12 && len(seen) < 3; i++ {
		r := 1
		if i == 0 {
			r = 3
		}
		b := fmt.Sprintf("lat%d", i)
		cfg := jetstream.KeyValueConfig{Bucket: b, Replicas: r, History: 1}
		if r == 1 {
			cfg.Placement = &jetstream.Placement{Tags: []string{"node:" + ns[i%3].name}}
		}
		kv, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), cfg)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := js.Stream(ctxT(5*time.Second), "KV_"+b)
		leader := st.CachedInfo().Cluster.Leader
		kind := fmt.Sprintf("R%d", r)
		if r == 1 {
			if leader == x.name {
				kind = "R1-local"
			} else {
				kind = "R1-remote"
			}
		}
		if seen[kind] {
			continue
		}
		seen[kind] = true
		const n = 500
		var ds, gd []time.Duration
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if _, err := kv.Put(ctxT(5*time.Second), fmt.Sprintf("k%d", i%20), []byte("value")); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if _, err := kv.Get(ctxT(5*time.Second), fmt.Sprintf("k%d", i%20)); err != nil {
				t.Fatal(err)
			}
			gd = append(gd, time.Since(t0))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		sort.Slice(gd, func(i, j int) bool { return gd[i] < gd[j] })
		t.Logf("%-9s (stream leader %s, client on %s): put p50=%v p90=%v p99=%v; get p50=%v p90=%v", kind, leader, x.name,
			ds[n/2].Round(time.Microsecond), ds[n*9/10].Round(time.Microsecond), ds[n*99/100].Round(time.Microsecond),
			gd[n/2].Round(time.Microsecond), gd[n*9/10].Round(time.Microsecond))
	}
	// Standalone baseline.
	solo := &xnode{name: "solo", dir: t.TempDir(), alone: true}
	solo.start(t)
	defer solo.stop()
	_, js = conn(t, solo)
	kv, _ := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "solo", History: 1})
	var ds []time.Duration
	for i := 0; i < 500; i++ {
		t0 := time.Now()
		if _, err := kv.Put(ctxT(5*time.Second), fmt.Sprintf("k%d", i%20), []byte("value")); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("standalone: put p50=%v p90=%v", ds[250].Round(time.Microsecond), ds[450].Round(time.Microsecond))
}

// Exp 8: an existing WatchAll on a surviving node when the R3 stream leader dies.
func TestExpWatchKill(t *testing.T) {
	ns := mkNodes(t, 3, true)
	var wg sync.WaitGroup
	for _, x := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); x.start(t) }()
	}
	wg.Wait()
	expWaitMeta(ns, 30*time.Second)
	for len(peers(ns)) < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	_, js := conn(t, ns[0])
	kv, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "w", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctxT(5*time.Second), "KV_w")
	leader := st.CachedInfo().Cluster.Leader
	var victim, watcher *xnode
	for _, x := range ns {
		if x.name == leader {
			victim = x
		}
	}
	for _, x := range ns {
		if x != victim {
			watcher = x
			break
		}
	}
	_, wjs := conn(t, watcher)
	wkv, _ := wjs.KeyValue(ctxT(5*time.Second), "w")
	w, err := wkv.WatchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			break
		}
	}
	kv.Put(ctxT(time.Second), "a", []byte("1"))
	e := <-w.Updates()
	t.Logf("watch on %s got %s before kill; killing stream leader %s (meta leader %s)", watcher.name, e.Key(), victim.name, metaLeader(ns))
	t0 := time.Now()
	victim.stop()
	_, pjs := conn(t, watcher)
	pkv := wkv
	fails := 0
	for {
		if _, err := pkv.Put(ctxT(250*time.Millisecond), "b", []byte("2")); err == nil {
			break
		} else {
			fails++
			if fails < 3 {
				t.Logf("put b: %v (%v)", err, time.Since(t0))
			}
		}
	}
	t.Logf("%d failed puts", fails)
	t.Logf("put after kill ok at %v", time.Since(t0))
	select {
	case e := <-w.Updates():
		t.Logf("watch got %v after %v", e.Key(), time.Since(t0))
	case <-time.After(40 * time.Second):
		t.Logf("watch got nothing in 40s")
	}
	st, _ = pjs.Stream(ctxT(5*time.Second), "KV_w")
	ci, _ := st.Info(ctxT(5 * time.Second))
	t.Logf("consumers on KV_w now: %d", ci.State.Consumers)
}

// Exp 9: 2-node cluster, one node dies.
func TestExpTwoNodes(t *testing.T) {
	ns := mkNodes(t, 2, true)
	for _, x := range ns {
		x.start(t)
	}
	t.Logf("2-node meta healthy after %v", expWaitMeta(ns, 30*time.Second))
	for len(peers(ns)) < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	_, js := conn(t, ns[0])
	kv, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "one", Replicas: 1})
	t.Logf("R1: %v", err)
	st, _ := js.Stream(ctxT(5*time.Second), "KV_one")
	t.Logf("KV_one on %s", st.CachedInfo().Cluster.Leader)
	kv2, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: "two", Replicas: 2})
	t.Logf("R2: %v", err)
	kv.Put(ctxT(time.Second), "a", []byte("1"))
	kv2.Put(ctxT(time.Second), "a", []byte("1"))
	// kill the node that does not hold KV_one
	var victim, surv *xnode
	for _, x := range ns {
		if x.name == st.CachedInfo().Cluster.Leader {
			surv = x
		} else {
			victim = x
		}
	}
	victim.stop()
	time.Sleep(time.Second)
	_, sjs := conn(t, surv)
	skv, err := sjs.KeyValue(ctxT(5*time.Second), "one")
	t.Logf("after kill of %s: lookup R1 bucket: %v", victim.name, err)
	if skv != nil {
		_, err = skv.Put(ctxT(3*time.Second), "b", []byte("2"))
		t.Logf("R1 put: %v", err)
		_, err = skv.Get(ctxT(3*time.Second), "a")
		t.Logf("R1 get: %v", err)
		_, err = skv.WatchAll(ctxT(10 * time.Second))
		t.Logf("R1 WatchAll: %v", err)
	}
	skv2, err := sjs.KeyValue(ctxT(5*time.Second), "two")
	if skv2 != nil {
		_, err = skv2.Put(ctxT(3*time.Second), "b", []byte("2"))
		t.Logf("R2 put: %v", err)
	}
	time.Sleep(12 * time.Second)
	t.Logf("meta after 13s: %v", metaHealthy(surv))
	if skv != nil {
		_, err = skv.Put(ctxT(3*time.Second), "c", []byte("2"))
		t.Logf("R1 put after 13s: %v", err)
		_, err = skv.WatchAll(ctxT(10 * time.Second))
		t.Logf("R1 WatchAll after 13s: %v", err)
	}
}

// Exp 10: every node lists only n1 (seed); mesh via gossip? meta size?
func TestExpSeed(t *testing.T) {
	ns := mkNodes(t, 3, true)
	for _, x := range ns {
		x.route = x.route[:1]
	}
	ns[0].start(t)
	t.Logf("seed alone (routes=[self]): meta healthy %v", expWaitMeta(ns[:1], 8*time.Second))
	ns[1].start(t)
	t.Logf("seed+1: meta healthy after %v leader=%s", expWaitMeta(ns[:2], 20*time.Second), metaLeader(ns))
	ns[2].start(t)
	t0 := time.Now()
	for time.Since(t0) < 20*time.Second && len(peers(ns)) < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("3rd: peers=%v after %v; routes: %d %d %d", peers(ns), time.Since(t0), ns[0].s.NumRoutes(), ns[1].s.NumRoutes(), ns[2].s.NumRoutes())
	out, _ := exec.Command("find", ns[1].dir, "-maxdepth", "4", "-type", "d").Output()
	t.Logf("layout:\n%s", out)
}

// Exp 11: crash (SIGKILL) rather than graceful Shutdown, which steps raft leaders down first
// (server.go Shutdown -> stepdownRaftNodes). Children are this test binary re-executed.
func TestExpCrash(t *testing.T) {
	if os.Getenv("EXP_CHILD") != "" {
		var routes []*url.URL
		for _, r := range strings.Split(os.Getenv("EXP_ROUTES"), ",") {
			u, _ := url.Parse("nats-route://" + r)
			routes = append(routes, u)
		}
		var cport, rport, hport int
		fmt.Sscan(os.Getenv("EXP_CPORT"), &cport)
		fmt.Sscan(os.Getenv("EXP_RPORT"), &rport)
		fmt.Sscan(os.Getenv("EXP_HPORT"), &hport)
		o := &server.Options{ServerName: os.Getenv("EXP_CHILD"), JetStream: true, StoreDir: os.Getenv("EXP_DIR"),
			Host: "127.0.0.1", Port: cport, HTTPHost: "127.0.0.1", HTTPPort: hport, NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "flint", Host: "127.0.0.1", Port: rport}, Routes: routes}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		select {}
	}
	for _, kill := range []string{"stream leader", "meta leader"} {
		t.Run(strings.ReplaceAll(kill, " ", "-"), func(t *testing.T) { crashOnce(t, kill) })
	}
}

func crashOnce(t *testing.T, kill string) {
	ps := freePorts(t, 9)
	var rs []string
	for i := 0; i < 3; i++ {
		rs = append(rs, fmt.Sprintf("127.0.0.1:%d", ps[3+i]))
	}
	cmds := map[string]*exec.Cmd{}
	curls, hurls := map[string]string{}, map[string]string{}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("n%d", i+1)
		c := exec.Command(os.Args[0], "-test.run=^TestExpCrash$")
		c.Env = append(os.Environ(), "EXP_CHILD="+name, "EXP_ROUTES="+strings.Join(rs, ","), "EXP_DIR="+t.TempDir(),
			fmt.Sprintf("EXP_CPORT=%d", ps[i]), fmt.Sprintf("EXP_RPORT=%d", ps[3+i]), fmt.Sprintf("EXP_HPORT=%d", ps[6+i]))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[name] = c
		curls[name] = fmt.Sprintf("nats://127.0.0.1:%d", ps[i])
		hurls[name] = fmt.Sprintf("http://127.0.0.1:%d/jsz", ps[6+i])
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	connect := func(name string) jetstream.JetStream {
		for {
			nc, err := nats.Connect(curls[name], nats.MaxReconnects(-1))
			if err == nil {
				t.Cleanup(nc.Close)
				js, _ := jetstream.New(nc)
				return js
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	metaLeaderOf := func(name string) string {
		resp, err := http.Get(hurls[name])
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var v struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		return v.Meta.Leader
	}
	js := connect("n1")
	t0 := time.Now()
	for {
		_, err := js.CreateOrUpdateKeyValue(ctxT(time.Second), jetstream.KeyValueConfig{Bucket: "c", Replicas: 3})
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("R3 bucket created %v after start", time.Since(t0))
	st, _ := js.Stream(ctxT(5*time.Second), "KV_c")
	ci, _ := st.Info(ctxT(5 * time.Second))
	sleader, mleader := ci.Cluster.Leader, metaLeaderOf("n1")
	victim := sleader
	if kill == "meta leader" {
		victim = mleader
	}
	var surv string
	for n := range cmds {
		if n != victim {
			surv = n
		}
	}
	sjs := connect(surv)
	skv, err := sjs.KeyValue(ctxT(5*time.Second), "c")
	if err != nil {
		t.Fatal(err)
	}
	skv.Put(ctxT(time.Second), "x", []byte("1"))
	cmds[victim].Process.Signal(syscall.SIGKILL)
	t0 = time.Now()
	fails := 0
	for {
		if _, err := skv.Put(ctxT(250*time.Millisecond), "y", []byte("1")); err == nil {
			break
		}
		fails++
	}
	tput := time.Since(t0)
	for {
		_, err := sjs.CreateOrUpdateKeyValue(ctxT(time.Second), jetstream.KeyValueConfig{Bucket: "c2", Replicas: 3})
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("SIGKILL %s (stream leader %s, meta leader %s): put through %s ok after %v (%d failed 250ms attempts); R3 create ok after %v",
		victim, sleader, mleader, surv, tput.Round(time.Millisecond), fails, time.Since(t0).Round(time.Millisecond))
}

// Exp 12: every node opens the same buckets at the same time, as each Flint node's Open would.
func TestExpConcurrentOpen(t *testing.T) {
	ns := mkNodes(t, 3, false)
	var wg sync.WaitGroup
	for _, x := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); x.start(t) }()
	}
	wg.Wait()
	expWaitMeta(ns, 30*time.Second)
	for time.Now(); len(peers(ns)) < 3; {
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	errs := make(chan string, 100)
	for _, x := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, js := conn(t, x)
			for i := 0; i < 15; i++ {
				b := fmt.Sprintf("b%d", i)
				if os.Getenv("EXP_DISTINCT") != "" {
					b += x.name
				}
				r := 3
				if os.Getenv("EXP_R1") != "" {
					r = 1
				}
				t1 := time.Now()
				_, err := js.CreateOrUpdateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{
					Bucket: b, History: 1, Storage: jetstream.FileStorage, Replicas: r})
				if os.Getenv("EXP_TIMES") != "" {
					t.Logf("%s %s %v %v", x.name, b, time.Since(t1).Round(time.Millisecond), err)
				}
				if err != nil {
					errs <- fmt.Sprintf("%s b%d: %v", x.name, i, err)
				}
			}
			_, err := js.CreateOrUpdateObjectStore(ctxT(10*time.Second), jetstream.ObjectStoreConfig{Bucket: "code", Storage: jetstream.FileStorage, Replicas: 3})
			if err != nil {
				errs <- fmt.Sprintf("%s code: %v", x.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		n++
		t.Logf("error: %s", e)
	}
	t.Logf("3 nodes x (15 KV + 1 object store) R3 concurrently: %d errors, %v", n, time.Since(t0))
}

// Exp 13: minimal same-name concurrent stream requests from the three nodes.
func TestExpConcurrentSame(t *testing.T) {
	ns := mkNodes(t, 3, false)
	var wg sync.WaitGroup
	for _, x := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); x.start(t) }()
	}
	wg.Wait()
	expWaitMeta(ns, 30*time.Second)
	for len(peers(ns)) < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	jss := make([]jetstream.JetStream, 3)
	for i, x := range ns {
		_, jss[i] = conn(t, x)
	}
	ops := []string{"create", "update-then-create", "create-existing", "update-existing", "update-missing", "single-update-then-create"}
	if o := os.Getenv("EXP_OPS"); o != "" {
		ops = strings.Split(o, ",")
	}
	for _, op := range ops {
		for round := 0; round < 3; round++ {
			name := fmt.Sprintf("S_%s_%d", strings.ReplaceAll(op, "-", "_"), round)
			cfg := jetstream.StreamConfig{Name: name, Subjects: []string{name}, Replicas: 3}
			if op == "kv-create-else-update" && round > 0 {
				// exists as R1 (a node that ran alone or an older config): must become R3
				if _, err := jss[0].CreateKeyValue(ctxT(10*time.Second), jetstream.KeyValueConfig{Bucket: name, History: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if strings.HasPrefix(op, "kv-") {
				defer func() {
					if st, err := jss[1].Stream(ctxT(2*time.Second), "KV_"+name); err == nil {
						t.Logf("  KV_%s replicas=%d", name, st.CachedInfo().Config.Replicas)
					}
				}()
			}
			if strings.HasSuffix(op, "existing") {
				if _, err := jss[0].CreateStream(ctxT(10*time.Second), cfg); err != nil {
					t.Fatal(err)
				}
			}
			t0 := time.Now()
			res := make([]string, 3)
			for i := range ns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t1 := time.Now()
					var err error
					switch op {
					case "create", "create-existing":
						_, err = jss[i].CreateStream(ctxT(5*time.Second), cfg)
					case "update-then-create":
						_, err = jss[i].CreateOrUpdateStream(ctxT(5*time.Second), cfg)
					case "update-existing", "update-missing":
						_, err = jss[i].UpdateStream(ctxT(5*time.Second), cfg)
					case "kv-create":
						_, err = jss[i].CreateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: name, History: 1, Replicas: 3})
					case "kv-create-else-update":
						kcfg := jetstream.KeyValueConfig{Bucket: name, History: 1, Replicas: 3}
						_, err = jss[i].CreateKeyValue(ctxT(5*time.Second), kcfg)
						if errors.Is(err, jetstream.ErrBucketExists) {
							_, err = jss[i].UpdateKeyValue(ctxT(5*time.Second), kcfg)
						}
					case "kv-create-or-update":
						_, err = jss[i].CreateOrUpdateKeyValue(ctxT(5*time.Second), jetstream.KeyValueConfig{Bucket: name, History: 1, Replicas: 3})
					case "update-wait-create":
						jss[i].UpdateStream(ctxT(5*time.Second), cfg)
						time.Sleep(200 * time.Millisecond)
						_, err = jss[i].CreateStream(ctxT(5*time.Second), cfg)
					case "one-updates-all-create":
						if i == 0 {
							jss[i].UpdateStream(ctxT(5*time.Second), cfg)
						}
						_, err = jss[i].CreateStream(ctxT(5*time.Second), cfg)
					case "single-update-then-create":
						if i == 0 {
							_, err = jss[i].CreateOrUpdateStream(ctxT(5*time.Second), cfg)
						}
					}
					res[i] = fmt.Sprintf("%s:%v/%v", ns[i].name, time.Since(t1).Round(time.Millisecond), err)
				}()
			}
			wg.Wait()
			sname := name
			if strings.HasPrefix(op, "kv-") {
				sname = "KV_" + name
			}
			_, ierr := jss[0].Stream(ctxT(2*time.Second), sname)
			t.Logf("%-18s round %d (%v): %v; stream info afterwards: %v", op, round, time.Since(t0).Round(time.Millisecond), res, ierr)
		}
	}
}
