package cluster

import (
	"context"
	"log/slog"
	"path/filepath"
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
