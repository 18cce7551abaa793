package cluster

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func openStore(t testing.TB) *store.Store {
	t.Helper()
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Keyring: keys, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestMembershipStates: nodes sharing the heartbeat bucket list each other; one that stops
// cleanly is "stopped", one whose heartbeats stop is "down" once it has missed three, judged
// by its own interval.
func TestMembershipStates(t *testing.T) {
	st := openStore(t)
	clk := &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	node := func(name string, interval time.Duration, load Load) *Membership {
		return New(Config{Name: name, Address: func() string { return "http://" + name + ":9000" }, Sandbox: "linux", Interval: interval,
			Load: func() Load { return load }, Records: st.Nodes(), Now: clk.Now})
	}
	a := node("a", time.Second, Load{Environments: 3, Busy: 1, MemoryMB: 384, BudgetMB: 4096})
	b := node("b", 5*time.Second, Load{})
	c := node("c", time.Second, Load{})
	ctx := context.Background()

	// a runs its loop; b and c write one heartbeat each (c then stops cleanly).
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	for _, m := range []*Membership{b, c} {
		if err := m.beat(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.beat(ctx, true); err != nil {
		t.Fatal(err)
	}
	var nodes []Node
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if nodes, err = a.List(ctx); err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 3 || time.Now().After(deadline) {
			break
		}
	}
	want := map[string]string{"a": StateUp, "b": StateUp, "c": StateStopped}
	if len(nodes) != 3 {
		t.Fatalf("listed %+v, want a, b, c", nodes)
	}
	for _, n := range nodes {
		if n.State != want[n.Name] {
			t.Errorf("node %s: state %s, want %s", n.Name, n.State, want[n.Name])
		}
	}
	if n := nodes[0]; n.Name != "a" || n.Address != "http://a:9000" || n.Environments != 3 || n.Busy != 1 || n.MemoryMB != 384 || n.BudgetMB != 4096 || n.Sandbox != "linux" || n.Version == "" {
		t.Errorf("node a reported %+v", n)
	}

	// 4 s later b (every 5 s) is still up; 16 s later it has missed three heartbeats.
	clk.add(4 * time.Second)
	if got := state(nodes[1], clk.Now()); got != StateUp {
		t.Errorf("b after 4 s: %s, want up", got)
	}
	clk.add(12 * time.Second)
	if got := state(nodes[1], clk.Now()); got != StateDown {
		t.Errorf("b after 16 s: %s, want down", got)
	}

	// a stops cleanly: its last heartbeat says so.
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	nodes, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nodes[0].Name != "a" || nodes[0].State != StateStopped {
		t.Errorf("a after its Run ended: %+v", nodes[0])
	}
}

// TestMembershipDrain: any node drains any other through the nodes bucket; the drained node
// learns it at its next heartbeat (OnDrain) and reports it, List shows it draining; the last
// node able to take work is refused, an unknown node too; undrain restores; the drain
// outlives the drained node's restart (its first heartbeat reads it).
func TestMembershipDrain(t *testing.T) {
	// Heartbeats every second: a node is down after 3 s without one. With 100 ms, a loaded CI
	// run saw node a "down" (300 ms without a heartbeat) and refused to drain c as the last.
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	told := map[string][]bool{}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	node := func(name string) *Membership {
		m := New(Config{Name: name, Address: func() string { return "http://" + name }, Interval: time.Second,
			Records: st.Nodes(), OnDrain: func(on bool) { mu.Lock(); told[name] = append(told[name], on); mu.Unlock() }})
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Run(ctx) }()
		return m
	}
	a, _, _ := node("a"), node("b"), node("c")
	lastTold := func(name string) []bool { mu.Lock(); defer mu.Unlock(); return append([]bool(nil), told[name]...) }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		nodes, err := a.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 3 && len(lastTold("b")) > 0 && len(lastTold("c")) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes %+v", nodes)
		}
	}
	if got := lastTold("b"); len(got) != 1 || got[0] {
		t.Fatalf("b told %v before any drain, want [false]", got)
	}

	if _, err := a.Drain(ctx, "nosuch"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("drain an unknown node: %v, want ErrUnknownNode", err)
	}
	n, err := a.Drain(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "b" || n.State != StateDraining || !n.Draining || !n.DrainApplied {
		t.Errorf("drain b returned %+v, want b draining and applied", n)
	}
	if got := lastTold("b"); len(got) != 2 || !got[1] {
		t.Errorf("b told %v, want [false true]", got)
	}
	if _, err := a.Drain(ctx, "b"); err != nil { // again: nothing changes
		t.Errorf("drain b twice: %v", err)
	}
	if _, err := a.Drain(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	// a is the last node up and not draining: it may not drain, through itself or another.
	if _, err := a.Drain(ctx, "a"); !errors.Is(err, ErrLastNode) {
		t.Errorf("drain the last node: %v, want ErrLastNode", err)
	}
	nodes, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		want := map[string]string{"a": StateUp, "b": StateDraining, "c": StateDraining}[n.Name]
		if n.State != want {
			t.Errorf("node %s: %s, want %s", n.Name, n.State, want)
		}
	}

	// c restarts (a new Membership on the same bucket): its first heartbeat reads the drain.
	c2 := New(Config{Name: "c", Address: func() string { return "http://c" }, Interval: time.Second, Records: st.Nodes(),
		OnDrain: func(on bool) { mu.Lock(); told["c2"] = append(told["c2"], on); mu.Unlock() }})
	if on, err := Drained(ctx, st.Nodes(), "c"); err != nil || !on {
		t.Errorf("Drained(c) = %v, %v; want true", on, err)
	}
	if err := c2.beat(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := lastTold("c2"); len(got) != 1 || !got[0] || !c2.Draining() {
		t.Errorf("restarted c told %v, want [true]", got)
	}

	// Undrain b through b itself: applied at once.
	bSelf := New(Config{Name: "b", Address: func() string { return "http://b" }, Interval: time.Second, Records: st.Nodes()})
	if n, err := bSelf.Undrain(ctx, "b"); err != nil || n.State != StateUp || n.Draining {
		t.Errorf("undrain b = %+v, %v; want b up", n, err)
	}
	if _, err := a.Undrain(ctx, "nosuch"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("undrain an unknown node: %v, want ErrUnknownNode", err)
	}
	waitTold := func(name string, want []bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !slices.Equal(lastTold(name), want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s told %v, want %v", name, lastTold(name), want)
			}
		}
	}
	waitTold("b", []bool{false, true, false})
}

// TestMembershipDrainAlone: a node alone cannot drain: nothing would take its work.
func TestMembershipDrainAlone(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	m := New(Config{Name: "only", Address: func() string { return "http://only" }, Records: st.Nodes()})
	if err := m.beat(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Drain(ctx, "only"); !errors.Is(err, ErrLastNode) {
		t.Fatalf("drain the only node: %v, want ErrLastNode", err)
	}
	if on, err := Drained(ctx, st.Nodes(), "only"); err != nil || on {
		t.Errorf("after the refusal Drained = %v, %v; want nothing stored", on, err)
	}
}
