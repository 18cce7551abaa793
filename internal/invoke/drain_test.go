package invoke_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestRouteDrain: a draining node announces no environments (the others stop sending it
// work), refuses a forward that still reaches it, starts nothing and sends its own callers'
// invocations to another node, its own idle environment included; undrained, it runs them
// on its idle environment again.
func TestRouteDrain(t *testing.T) {
	c := newCluster(t, 0, 0, 0)
	a, b, d := c.nodes[0], c.nodes[1], c.nodes[2]
	c.function(t, "fn")
	first, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if b.envs() != 1 {
		t.Fatalf("b has %d environments, want its own cold start", b.envs())
	}
	c.warmOn(t, a, "fn", "b")

	b.svc.SetDraining(true)
	waitFor(t, "a to hear that b drains", func() bool {
		e, err := a.svc.Lookup(context.Background(), "fn", "")
		return err == nil && !slices.Contains(a.svc.WarmNodes(e), "b")
	})
	for range 3 {
		got, err := call(t, b, "fn", map[string]any{}, false)
		if err != nil {
			t.Fatal(err)
		}
		if got.answer.PID == first.answer.PID {
			t.Fatal("draining b ran an invocation on its own idle environment")
		}
	}
	if b.envs() != 1 || a.envs()+d.envs() == 0 {
		t.Errorf("environments: a %d, b %d, d %d; want b's one only, and one elsewhere", a.envs(), b.envs(), d.envs())
	}
	if st := b.svc.RouteStats(); st.Forwarded != 3 {
		t.Errorf("b forwarded %d, want 3", st.Forwarded)
	}
	// Through a and d: never to b.
	for _, n := range []*node{a, d} {
		if got, err := call(t, n, "fn", map[string]any{}, false); err != nil || got.answer.PID == first.answer.PID {
			t.Fatalf("through %s: %+v, %v; ran on draining b", n.name, got.answer, err)
		}
	}
	// A forward that reaches b anyway (sent before it heard) is refused, not run.
	e, err := b.svc.Lookup(context.Background(), "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("flint.route.invoke.b")
	m.Header.Set("Flint-Function", "fn")
	m.Header.Set("Flint-Version", "$LATEST")
	m.Header.Set("Flint-Revision", e.Fn.Config.RevisionId)
	m.Header.Set("Flint-Deadline", itoa(int(time.Now().Add(time.Minute).UnixNano())))
	m.Data = []byte(`{}`)
	resp, err := c.st.JetStream().Conn().RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Flint-Status"); got != "not-started" || resp.Header.Get("Flint-Error") != "node draining" {
		t.Errorf("forward to draining b: %q %q, want not-started, node draining", got, resp.Header.Get("Flint-Error"))
	}

	b.svc.SetDraining(false)
	got, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil || got.answer.PID != first.answer.PID {
		t.Errorf("undrained b: %+v, %v; want its own environment (pid %d)", got.answer, err, first.answer.PID)
	}
	c.warmOn(t, a, "fn", "b")
}
