package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/cluster"
)

func (a *app) nodesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's nodes",
		Long: "List every node that has joined this Flint cluster (a single server is a cluster of one):\n" +
			"its state (up; draining: takes no new work, see `flint nodes drain`; down: its heartbeats stopped\n" +
			"without a goodbye; stopped: shut down cleanly),\n" +
			"API address, environments (busy of all), memory taken of its budget, version and the age\n" +
			"of its last heartbeat. On a cluster, a last line says whether the node answering has the\n" +
			"cluster's quorum (a majority of the nodes in reach): a node that lost it refuses changes.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := a.getFlint(cmd.Context(), "/flint/v1/nodes", "the nodes")
			if err != nil {
				return err
			}
			var out cluster.Listing
			if err := json.Unmarshal(body, &out); err != nil {
				return fmt.Errorf("decode the nodes: %w", err)
			}
			if asJSON {
				_, err := a.stdout.Write(append(bytes.TrimRight(body, "\n"), '\n'))
				return err
			}
			if err := writeNodesTable(a.stdout, out.Nodes, time.Now()); err != nil {
				return err
			}
			return writeQuorum(a.stdout, out)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON as it is")
	cmd.AddCommand(a.drainCommand("drain", "Stop placing new work on a node and let its running invocations finish",
		"Ask the cluster (through any node, --endpoint) to drain node NAME: it starts no new environments,\n"+
			"takes no forwarded invocations, sends the invocations its own callers make to other nodes and\n"+
			"keeps no share of provisioned concurrency, while what it runs finishes. The drain is stored in\n"+
			"the cluster and outlives the node's restarts until `flint nodes undrain NAME`. Refused when no\n"+
			"other node is up and not draining. `flint nodes` shows the node draining, then 0 busy."),
		a.drainCommand("undrain", "Let a drained node take work again", "End node NAME's drain: it takes work again."))
	return cmd
}

// drainCommand is `flint nodes drain|undrain NAME`: POST /flint/v1/nodes/NAME/VERB, then the
// node as the cluster lists it.
func (a *app) drainCommand(verb, short, long string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Long:  long,
		Args:  rangeArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			client, err := a.flintHTTPClient(ctx, apiTimeout)
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/flint/v1/nodes/"+url.PathEscape(args[0])+"/"+verb, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return responseError(resp)
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return fmt.Errorf("read node %s: %w", args[0], err)
			}
			if asJSON {
				_, err := a.stdout.Write(append(bytes.TrimRight(body, "\n"), '\n'))
				return err
			}
			var n cluster.Node
			if err := json.Unmarshal(body, &n); err != nil {
				return fmt.Errorf("decode node %s: %w", args[0], err)
			}
			return writeNodesTable(a.stdout, []cluster.Node{n}, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON as it is")
	return cmd
}

// writeNodesTable prints the nodes as an aligned table, one a line.
func writeNodesTable(w io.Writer, nodes []cluster.Node, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tADDRESS\tENVIRONMENTS\tMEMORY\tVERSION\tHEARTBEAT")
	for _, n := range nodes {
		budget := "unbounded"
		if n.BudgetMB > 0 {
			budget = strconv.Itoa(n.BudgetMB) + " MB"
		}
		st := n.State
		if n.Draining && st != cluster.StateDraining { // asked to drain while down: it will when it starts
			st += ",draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d busy of %d\t%d MB of %s\t%s\t%s ago\n", n.Name, st, n.Address,
			n.Busy, n.Environments, n.MemoryMB, budget, n.Version, formatAge(now.Sub(n.Heartbeat)))
	}
	return tw.Flush()
}

// writeQuorum says whether the node answering has the cluster's quorum (nothing for a single
// node).
func writeQuorum(w io.Writer, l cluster.Listing) error {
	q := l.Quorum
	var err error
	switch q.State {
	case "", "standalone":
		return nil
	case "lost":
		_, err = fmt.Fprintf(w, "QUORUM LOST: %s reaches %d of %d nodes (%d needed) since %s: it refuses changes until it reaches a majority again; use another node\n",
			q.Node, q.Reach, q.Size, q.Needs, q.Since.Local().Format(time.RFC3339))
		if err == nil && l.Unlisted != "" {
			_, err = fmt.Fprintf(w, "(%s)\n", l.Unlisted)
		}
	case "electing":
		_, err = fmt.Fprintf(w, "quorum: electing a leader (%s reaches %d of %d nodes)\n", q.Node, q.Reach, q.Size)
	default:
		_, err = fmt.Fprintf(w, "quorum: %s (%s reaches %d of %d nodes, leader %s)\n", q.State, q.Node, q.Reach, q.Size, q.Leader)
	}
	return err
}
