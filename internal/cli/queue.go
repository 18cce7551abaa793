package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// queueTimeout bounds one read of the async queue's state.
const queueTimeout = 30 * time.Second

// queueStats is one function's asynchronous queue as GET /flint/v1/async reports it.
type queueStats struct {
	Function  string        `json:"function"`
	Depth     uint64        `json:"depth"`
	InFlight  int           `json:"in_flight"`
	OldestAge time.Duration `json:"oldest_age_ns"`
}

func (a *app) queueCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show the asynchronous invocation queue per function",
		Long: "Show each function's queue of asynchronous (Event) invocations: DEPTH is the events stored\n" +
			"(waiting, retrying or running), IN-FLIGHT the events running now and OLDEST the age of the\n" +
			"oldest stored event. Functions with nothing queued are not listed; with none at all it\n" +
			"prints \"nothing queued\".",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := a.getFlint(cmd.Context(), "/flint/v1/async", "the async queue")
			if err != nil {
				return err
			}
			var st struct {
				Functions []queueStats `json:"functions"`
			}
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("decode the async queue: %w", err)
			}
			if asJSON {
				body = append(bytes.TrimRight(body, "\n"), '\n')
				_, err := a.stdout.Write(body)
				return err
			}
			if len(st.Functions) == 0 {
				_, err := fmt.Fprintln(a.stdout, "nothing queued")
				return err
			}
			return writeQueueTable(a.stdout, st.Functions)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON as it is")
	return cmd
}

// getFlint reads one of Flint's own JSON endpoints (GET path), what names it in errors.
func (a *app) getFlint(ctx context.Context, path, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	client, err := a.flintHTTPClient(ctx, queueTimeout)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return body, nil
}

// writeQueueTable prints the queue as an aligned table, one function a line.
func writeQueueTable(w io.Writer, fns []queueStats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tDEPTH\tIN-FLIGHT\tOLDEST")
	for _, f := range fns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Function, strconv.FormatUint(f.Depth, 10), strconv.Itoa(f.InFlight), formatAge(f.OldestAge))
	}
	return tw.Flush()
}

// formatAge renders an age as precisely as a glance needs: 350ms, 1.2s, 3m0s, 2h5m0s; "-" when
// nothing is stored.
func formatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
