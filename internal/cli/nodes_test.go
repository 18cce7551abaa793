package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/cluster"
)

// TestNodesAgainstServer: a single server is a cluster of one, listed by `flint nodes` as up,
// with its address and budget; the table has one row for it.
func TestNodesAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := startServer(t, ctx, nil)

	code, out, errOut := runCLI(t, ctx, "nodes", "--json")
	if code != 0 {
		t.Fatalf("flint nodes --json: exit %d, %s", code, errOut)
	}
	var got struct {
		Nodes []struct {
			Name, Address, State, Version string
			BudgetMB                      int `json:"memory_budget_mb"`
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("flint nodes --json printed %q: %v", out, err)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].State != "up" || got.Nodes[0].Address != s.URL() || got.Nodes[0].Name == "" || got.Nodes[0].Version == "" {
		t.Fatalf("flint nodes --json: %+v, want one node up at %s", got.Nodes, s.URL())
	}

	code, out, errOut = runCLI(t, ctx, "nodes")
	if code != 0 || errOut != "" {
		t.Fatalf("flint nodes: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	row := regexp.MustCompile(`^` + regexp.QuoteMeta(got.Nodes[0].Name) + ` +up +` + regexp.QuoteMeta(s.URL()) + ` +\d+ busy of \d+ +\d+ MB of (\d+ MB|unbounded) +\S+ +\S+ ago$`)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !row.MatchString(lines[1]) {
		t.Errorf("flint nodes printed:\n%s\nwant a header and a row matching %s", out, row)
	}
}

// TestNodesDrainAgainstServer: a single server cannot drain (nothing would take its work): a
// clear refusal, nothing stored; an unknown node is not found; undrain of a node that does not
// drain prints it up.
func TestNodesDrainAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startServer(t, ctx, nil)
	code, out, _ := runCLI(t, ctx, "nodes", "--json")
	if code != 0 {
		t.Fatalf("flint nodes --json: exit %d", code)
	}
	var got struct{ Nodes []struct{ Name string } }
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Nodes) != 1 {
		t.Fatalf("flint nodes --json printed %q: %v", out, err)
	}
	name := got.Nodes[0].Name

	code, _, errOut := runCLI(t, ctx, "nodes", "drain", name)
	if code == 0 || !strings.Contains(errOut, "ResourceConflictException") || !strings.Contains(errOut, "no other node is up and not draining") {
		t.Errorf("flint nodes drain %s on a single server: exit %d, stderr %q; want a refusal saying why", name, code, errOut)
	}
	code, _, errOut = runCLI(t, ctx, "nodes", "drain", "nosuch")
	if code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("flint nodes drain nosuch: exit %d, stderr %q; want not found", code, errOut)
	}
	code, out, errOut = runCLI(t, ctx, "nodes", "undrain", name)
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+` +up `).MatchString(out) {
		t.Errorf("flint nodes undrain %s: exit %d, stdout %q, stderr %q; want its row, up", name, code, out, errOut)
	}
	code, out, _ = runCLI(t, ctx, "nodes")
	if code != 0 || strings.Contains(out, "draining") {
		t.Errorf("after the refused drain flint nodes printed:\n%s", out)
	}
}

// TestWriteQuorum: on a cluster, `flint nodes` ends with the answering node's quorum; a single
// server prints nothing more.
func TestWriteQuorum(t *testing.T) {
	since := time.Date(2026, 12, 6, 19, 10, 21, 0, time.UTC)
	for _, tc := range []struct {
		name string
		l    cluster.Listing
		want string
	}{
		{"standalone", cluster.Listing{Quorum: cluster.Quorum{State: "standalone"}}, ""},
		{"ok", cluster.Listing{Quorum: cluster.Quorum{Node: "node1", State: "ok", Reach: 3, Size: 3, Needs: 2, Leader: "node2"}},
			"quorum: ok (node1 reaches 3 of 3 nodes, leader node2)\n"},
		{"electing", cluster.Listing{Quorum: cluster.Quorum{Node: "node1", State: "electing", Reach: 2, Size: 3, Needs: 2}},
			"quorum: electing a leader (node1 reaches 2 of 3 nodes)\n"},
		{"lost", cluster.Listing{Quorum: cluster.Quorum{Node: "node3", State: "lost", Reach: 1, Size: 3, Needs: 2, Since: since},
			Unlisted: "this node has lost the cluster's quorum and cannot read the other nodes' heartbeats"},
			"QUORUM LOST: node3 reaches 1 of 3 nodes (2 needed) since " + since.Local().Format(time.RFC3339) +
				": it refuses changes until it reaches a majority again; use another node\n" +
				"(this node has lost the cluster's quorum and cannot read the other nodes' heartbeats)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeQuorum(&b, tc.l); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
