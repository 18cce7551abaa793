package invoke_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/control"
)

// TestProvisionedSpreadNodes: two routing nodes and a third that only announces itself (a
// node that then dies without a word): provisioned concurrency 3 is split 1/1/1, so the two
// real nodes keep 2 and report the third's announced environment in the cluster's count; once
// the third is silent for 3 refreshes, the two keep all 3 between them.
func TestProvisionedSpreadNodes(t *testing.T) {
	c := newClusterOpts(t, clusterOpts{every: 10 * time.Millisecond, refresh: 200 * time.Millisecond, route: true, spread: true}, 0, 0)
	a, b := c.nodes[0], c.nodes[1]
	ctx := context.Background()
	runCtx, stopWorkers := context.WithCancel(ctx)
	var workers sync.WaitGroup
	defer func() { stopWorkers(); workers.Wait() }()
	for _, x := range c.nodes { // provisioned environments are started by the worker's loop
		workers.Add(1)
		go func() { defer workers.Done(); _ = x.workers.Run(runCtx) }()
	}
	c.function(t, "fn")
	v, err := c.plane.Versions.Publish(ctx, control.Target{Op: "PublishVersion", Name: "fn"}, control.PublishInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := "fn:1:" + v.RevisionId
	stop := make(chan struct{})
	ghostDone := make(chan struct{})
	go func() { // the ghost announces every refresh, with one provisioned environment ready
		defer close(ghostDone)
		msg, _ := json.Marshal(map[string]any{"node": "ghost", "free_mb": -1, "prov": map[string]int{key: 1}})
		for {
			if err := c.st.JetStream().Conn().Publish("flint.route.idle", msg); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-ghostDone
	}()
	n := 3
	if _, err := c.plane.Provisioned.Put(ctx, control.Target{Op: "PutProvisionedConcurrencyConfig", Name: "fn", Qualifier: "1"},
		control.ProvisionedInput{ProvisionedConcurrentExecutions: &n}); err != nil {
		t.Fatal(err)
	}
	prov := func(x *node) int { return x.workers.Stats().Provisioned }
	waitFor(t, "a and b to keep one each", func() bool { return prov(a) == 1 && prov(b) == 1 })
	for _, x := range []*node{a, b} {
		waitFor(t, x.name+" to count the cluster's 3", func() bool {
			_, ready, err := x.svc.Provisioned(ctx, "fn", "1")
			return err == nil && ready == 3
		})
	}
	time.Sleep(300 * time.Millisecond) // more refreshes: the split holds
	if prov(a) != 1 || prov(b) != 1 {
		t.Fatalf("a keeps %d, b %d; want 1 each while the ghost is heard", prov(a), prov(b))
	}

	close(stop)
	<-ghostDone
	silent := time.Now()
	waitFor(t, "a and b to take up the silent node's share", func() bool { return prov(a)+prov(b) == 3 })
	t.Logf("a %d, b %d: 3 kept %v after the third node fell silent (3 refreshes of 200 ms, then a cold start)", prov(a), prov(b), time.Since(silent))
	// Its last announcement was at most 100 ms before it fell silent.
	if d := time.Since(silent); d < 3*200*time.Millisecond-100*time.Millisecond {
		t.Errorf("the silent node's share moved after %v, before it could be judged gone", d)
	}
	for _, x := range []*node{a, b} {
		waitFor(t, x.name+" to count 3 without the silent node", func() bool {
			_, ready, err := x.svc.Provisioned(ctx, "fn", "1")
			return err == nil && ready == 3
		})
	}
}
