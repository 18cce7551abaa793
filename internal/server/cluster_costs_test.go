// The inputs of docs/CLUSTER.md's model of scale, measured on three in-process nodes:
//   go test -count=1 -run '^$' -bench BenchmarkClusterCosts -benchtime 1x ./internal/server/

package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/server"
)

// BenchmarkClusterCosts counts NATS messages on three nodes: per second while idle, per warm
// invoke run where it arrived, per warm invoke forwarded to another node, per async event and
// per configuration write. "client" is Flint's own connection on each node (what Flint sends
// and receives), "server" each embedded server's total (with the routes: replication and
// relaying), both summed over the three nodes.
func BenchmarkClusterCosts(b *testing.B) {
	for range b.N {
		nodes := startCluster(b, 3)
		ctx := context.Background()
		clients := make([]*lambda.Client, len(nodes))
		for i, n := range nodes {
			clients[i] = newClusterClient(n.srv.URL())
		}
		sum := func() (c, s uint64) {
			for _, n := range nodes {
				tr := server.Traffic(n.srv)
				c += tr.Client.InMsgs + tr.Client.OutMsgs
				s += tr.Server.InMsgs + tr.Server.OutMsgs
			}
			return c, s
		}
		// The idle rates (heartbeats, announcements, lease renewals, watches' heartbeats) run
		// under every phase: a phase's figure is what it added to them.
		var idleC, idleS float64
		measure := func(name string, per int, f func()) {
			c0, s0 := sum()
			t0 := time.Now()
			f()
			d := time.Since(t0).Seconds()
			c1, s1 := sum()
			b.ReportMetric((float64(c1-c0)-idleC*d)/float64(per), name+"_client_msgs")
			b.ReportMetric((float64(s1-s0)-idleS*d)/float64(per), name+"_server_msgs")
		}
		invoke := func(c *lambda.Client, fn string) {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)})
			if err != nil || out.FunctionError != nil {
				b.Fatalf("invoke %s: %v %v", fn, err, out)
			}
		}

		createFunction(b, clients[0], "costs", "provided.al2023", "bootstrap", goEchoZip)
		waitKnown(b, clients, "costs")
		time.Sleep(5 * time.Second) // past the start's own traffic
		const idle = 10
		c0, s0 := sum()
		time.Sleep(idle * time.Second)
		c1, s1 := sum()
		idleC, idleS = float64(c1-c0)/idle, float64(s1-s0)/idle
		b.ReportMetric(idleC/3, "idle_per_node_per_s_client_msgs")
		b.ReportMetric(idleS/3, "idle_per_node_per_s_server_msgs")

		// Warm on node 1, then invoked through node 1: run where it arrived.
		invoke(clients[0], "costs")
		const n = 500
		measure("local_invoke", n, func() {
			for range n {
				invoke(clients[0], "costs")
			}
		})
		// Through node 2, which has no environment and hears that node 1 has one: forwarded.
		time.Sleep(3 * time.Second)
		fwd0 := nodes[1].srv.Workers().Stats()
		measure("forwarded_invoke", n, func() {
			for range n {
				invoke(clients[1], "costs")
			}
		})
		if st := nodes[1].srv.Workers().Stats(); st.Idle+st.Busy != fwd0.Idle+fwd0.Busy {
			b.Logf("node 2 started environments of its own during the forwarded phase (%+v): the figure mixes in local runs", st)
		}

		const events = 200
		measure("async_event", events, func() {
			for i := range events {
				_, err := clients[i%3].Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("costs"),
					InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
				if err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				st, err := asyncStats(nodes[0].srv.URL())
				if err == nil && depth(st, "costs") == 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("async events not done: %v %v", st, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})

		const writes = 50
		measure("config_write", writes, func() {
			for i := range writes {
				_, err := clients[i%3].UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String("costs"), Description: aws.String(fmt.Sprint("write ", i))})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// waitKnown waits until every node answers GetFunction for fn.
func waitKnown(b *testing.B, clients []*lambda.Client, fn string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range clients {
		for {
			_, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not known on every node: %v", fn, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// BenchmarkClusterIdle: the NATS messages per node per second of an idle cluster of 3 and of 5
// nodes, one function known: the model's fixed and per-peer parts.
//
//	go test -count=1 -run '^$' -bench BenchmarkClusterIdle -benchtime 1x ./internal/server/
func BenchmarkClusterIdle(b *testing.B) {
	for _, size := range []int{3, 5} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			for range b.N {
				nodes := startCluster(b, size)
				c := newClusterClient(nodes[0].srv.URL())
				createFunction(b, c, "idle", "provided.al2023", "bootstrap", goEchoZip)
				if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("idle")}); err != nil {
					b.Fatal(err)
				}
				time.Sleep(5 * time.Second)
				sum := func() (c, s uint64) {
					for _, n := range nodes {
						tr := server.Traffic(n.srv)
						c += tr.Client.InMsgs + tr.Client.OutMsgs
						s += tr.Server.InMsgs + tr.Server.OutMsgs
					}
					return c, s
				}
				const idle = 10
				c0, s0 := sum()
				time.Sleep(idle * time.Second)
				c1, s1 := sum()
				b.ReportMetric(float64(c1-c0)/idle/float64(size), "per_node_per_s_client_msgs")
				b.ReportMetric(float64(s1-s0)/idle/float64(size), "per_node_per_s_server_msgs")
			}
		})
	}
}
