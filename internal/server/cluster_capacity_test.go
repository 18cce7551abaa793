// Capacity of one node against three (issue 14's "1-node → 3-node figure"):
//   go test -race -count=1 -run TestClusterCapacity -v ./internal/server/

package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
)

// capacityPerNode is how many environments of the test function (128 MB) one node's memory
// budget fits.
const capacityPerNode = 4

// TestClusterCapacity: with each node's memory budget fitting N environments, one node serves
// N of 3N simultaneous invocations (the rest are throttled on its budget) and three nodes serve
// all 3N at once: N environments on each, whether the clients spread their calls over the
// nodes or send every call to one of them (placement starts the environments its own budget
// cannot hold on the nodes with room).
func TestClusterCapacity(t *testing.T) {
	budget := func(c *config.Config) { c.MemoryBudgetMB = capacityPerNode * 128 }
	const calls = 3 * capacityPerNode
	// Each call holds its environment long enough for all of them to overlap, however slowly
	// the others start on a busy machine.
	const event = `{"sleep_ms":2500}`

	t.Run("one node", func(t *testing.T) {
		s := startServer(t, t.TempDir(), budget)
		c := newClusterClient(s.URL())
		createFunction(t, c, "capacity", "provided.al2023", "bootstrap", goEchoZip)
		ok, throttled := burst(t, []*lambda.Client{c}, "capacity", calls, event)
		t.Logf("1 node, budget for %d: %d of %d served at once, %d throttled", capacityPerNode, ok, calls, throttled)
		if ok != capacityPerNode || throttled != calls-capacityPerNode {
			t.Errorf("served %d, throttled %d; want %d and %d", ok, throttled, capacityPerNode, calls-capacityPerNode)
		}
	})

	nodes := startCluster(t, 3, budget)
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClusterClient(n.srv.URL())
	}
	for _, tc := range []struct {
		name    string
		clients []*lambda.Client
	}{
		{"three nodes, calls spread over them", clients},
		{"three nodes, every call through node 1", clients[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A function of its own: every call needs a new environment (the idle ones of the
			// case before take budget a node evicts to make room).
			fn := "capacity-" + fmt.Sprint(len(tc.clients))
			createFunction(t, clients[0], fn, "provided.al2023", "bootstrap", goEchoZip)
			for i, c := range clients {
				eventually(t, 30*time.Second, fmt.Sprintf("node %d knows %s", i+1, fn), func() error {
					_, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
					return err
				})
			}
			ok, throttled := burst(t, tc.clients, fn, calls, event)
			var per []int
			for _, n := range nodes {
				st := n.srv.Workers().Stats()
				per = append(per, st.Idle+st.Busy)
			}
			t.Logf("3 nodes, budget for %d each: %d of %d served at once, %d throttled; environments per node %v", capacityPerNode, ok, calls, throttled, per)
			if ok != calls {
				t.Errorf("served %d of %d (throttled %d), want all", ok, calls, throttled)
			}
			for i, n := range per {
				if n > capacityPerNode {
					t.Errorf("node %d holds %d environments, its budget fits %d", i+1, n, capacityPerNode)
				}
			}
		})
	}
}

// burst sends calls simultaneous invocations of fn, round-robin over clients, and counts the
// answers and the throttles.
func burst(t *testing.T, clients []*lambda.Client, fn string, calls int, event string) (ok, throttled int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range calls {
		c := clients[i%len(clients)]
		wg.Go(func() {
			<-start
			out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(event)})
			mu.Lock()
			defer mu.Unlock()
			var tm *types.TooManyRequestsException
			switch {
			case err == nil && out.FunctionError == nil:
				ok++
			case err == nil:
				t.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
			case errors.As(err, &tm):
				throttled++
			default:
				t.Errorf("invoke: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, throttled
}
