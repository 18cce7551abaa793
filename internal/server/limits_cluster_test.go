// Cluster-wide reserved concurrency on three real nodes (startCluster):
//   go test -race -count=1 -run TestClusterReservedConcurrency ./internal/server/

package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestClusterReservedConcurrency: on 3 real nodes, reserved concurrency 2 and 6 simultaneous
// 1-second invokes spread over the nodes (2 each): 2 succeed, 4 get TooManyRequestsException
// with Lambda's reason.
func TestClusterReservedConcurrency(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClient(n.srv.URL())
	}
	createFunction(t, clients[0], "limited", "provided.al2023", "bootstrap", goEchoZip)
	// Each node writes it and reads its own write: every node's view has the reservation.
	for i, c := range clients {
		eventually(t, 30*time.Second, "reserve through every node", func() error {
			_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("limited"),
				ReservedConcurrentExecutions: aws.Int32(2)})
			if err != nil {
				t.Logf("node %d: %v", i+1, err)
			}
			return err
		})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, throttled := 0, 0
	start := make(chan struct{})
	for i := range 6 {
		c := clients[i%3]
		wg.Go(func() {
			<-start
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("limited"), Payload: []byte(`{"sleep_ms":1000}`)})
			mu.Lock()
			defer mu.Unlock()
			var tm *types.TooManyRequestsException
			switch {
			case err == nil:
				ok++
			case errors.As(err, &tm) && tm.Reason == types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded:
				throttled++
			default:
				t.Errorf("invoke: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 2 || throttled != 4 {
		t.Errorf("%d succeeded and %d were throttled of 6 simultaneous invokes over 3 nodes with 2 reserved; want 2 and 4", ok, throttled)
	}
}
