package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

func TestMain(m *testing.M) { Main(m) }

const pidPy = `import os
def handler(event, context):
    return {"ppid": os.getppid()}
`

// invokePPID invokes "pid" through client and returns the node process that ran it.
func invokePPID(ctx context.Context, client *lambda.Client) (int, error) {
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pid")})
	if err != nil {
		return 0, err
	}
	if out.FunctionError != nil {
		return 0, fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
	}
	var r struct{ PPID int }
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		return 0, fmt.Errorf("payload %s: %w", out.Payload, err)
	}
	return r.PPID, nil
}

// TestHarness checks the harness itself against three real `flint serve` processes: every node
// serves and invokes; after a SIGKILL the other two go on and list the dead one as down; the
// restarted node (same name, data and ports) serves again and is up.
func TestHarness(t *testing.T) {
	t0 := time.Now()
	c := Start(t, Options{})
	t.Logf("flint built in %v (race detector: %v); 3 nodes serving %v after the start", BuildTime().Round(time.Millisecond), raceEnabled, time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()
	c.Deploy(t, "pid", "python3.11", "app.handler", map[string]string{"app.py": pidPy})
	for _, n := range c.Nodes {
		ppid, err := invokePPID(ctx, n.Lambda)
		if err != nil {
			t.Fatalf("invoke through %s: %v", n.Name, err)
		}
		if _, _, ok := c.Owner(ppid); !ok {
			t.Errorf("invoke through %s ran under pid %d, no node's", n.Name, ppid)
		}
	}

	const victim = 2
	c.Kill(victim)
	if c.Alive(victim) {
		t.Fatal("killed node still alive")
	}
	for _, i := range []int{0, 1} {
		Eventually(t, 30*time.Second, fmt.Sprintf("invoke through %s with %s dead", c.Nodes[i].Name, c.Nodes[victim].Name), func() error {
			ppid, err := invokePPID(ctx, c.Nodes[i].Lambda)
			if err != nil {
				return err
			}
			if n, _, _ := c.Owner(ppid); n == victim {
				return fmt.Errorf("ran on the dead node (pid %d)", ppid)
			}
			return nil
		})
		Eventually(t, 30*time.Second, fmt.Sprintf("%s lists %s down", c.Nodes[i].Name, c.Nodes[victim].Name), func() error {
			st, err := c.NodeStates(ctx, i)
			if err != nil {
				return err
			}
			if st[c.Nodes[victim].Name] != "down" {
				return fmt.Errorf("states %v", st)
			}
			return nil
		})
	}

	t1 := time.Now()
	c.Restart(victim)
	t.Logf("%s serving again %v after its restart", c.Nodes[victim].Name, time.Since(t1).Round(time.Millisecond))
	if pids := c.PIDs(victim); len(pids) != 2 || pids[0] == pids[1] {
		t.Errorf("pids of the restarted node: %v", pids)
	}
	if _, err := invokePPID(ctx, c.Nodes[victim].Lambda); err != nil {
		t.Errorf("invoke through the restarted node: %v", err)
	}
	Eventually(t, 30*time.Second, "every node lists all three up", func() error {
		for i := range c.Nodes {
			st, err := c.NodeStates(ctx, i)
			if err != nil {
				return err
			}
			for _, n := range c.Nodes {
				if st[n.Name] != "up" {
					return fmt.Errorf("%s: %v", c.Nodes[i].Name, st)
				}
			}
		}
		return nil
	})
	if b, err := os.ReadFile(c.Nodes[victim].LogPath); err != nil || len(b) == 0 {
		t.Errorf("log of %s: %d bytes, %v", c.Nodes[victim].Name, len(b), err)
	}
}
