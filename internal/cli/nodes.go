package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
			"its state (up; down: its heartbeats stopped without a goodbye; stopped: shut down cleanly),\n" +
			"API address, environments (busy of all), memory taken of its budget, version and the age\n" +
			"of its last heartbeat.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := a.getFlint(cmd.Context(), "/flint/v1/nodes", "the nodes")
			if err != nil {
				return err
			}
			var out struct {
				Nodes []cluster.Node `json:"nodes"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return fmt.Errorf("decode the nodes: %w", err)
			}
			if asJSON {
				_, err := a.stdout.Write(append(bytes.TrimRight(body, "\n"), '\n'))
				return err
			}
			return writeNodesTable(a.stdout, out.Nodes, time.Now())
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d busy of %d\t%d MB of %s\t%s\t%s ago\n", n.Name, n.State, n.Address,
			n.Busy, n.Environments, n.MemoryMB, budget, n.Version, formatAge(now.Sub(n.Heartbeat)))
	}
	return tw.Flush()
}
