package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// logsTimeout bounds reading logs when not following.
const logsTimeout = 5 * time.Minute

func (a *app) logsCommand() *cobra.Command {
	var (
		follow bool
		tail   int
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a function's logs",
		Long: "Print a function's logs: each invocation's START line, its output, END and REPORT.\n" +
			"--tail N prints only the newest N records; --follow keeps printing new ones until Ctrl-C\n" +
			"(with --follow and no --tail, only new records).",
		Example: "  flint logs go-echo --tail 20\n  flint logs go-echo -f",
		Args:    exactArgs(1, "function NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tail < 0 {
				return usageErrorf(cmd, "--tail must not be negative")
			}
			q := url.Values{}
			if cmd.Flags().Changed("tail") {
				q.Set("tail", strconv.Itoa(tail))
			}
			if follow {
				q.Set("follow", "true")
			}
			u := a.endpoint + "/flint/v1/functions/" + url.PathEscape(args[0]) + "/logs"
			if len(q) > 0 {
				u += "?" + q.Encode()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			timeout := logsTimeout
			if follow {
				timeout = 0 // until Ctrl-C
			}
			client, err := a.flintHTTPClient(ctx, timeout)
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			resp, err := client.Do(req)
			if err != nil {
				if follow && ctx.Err() != nil {
					return nil
				}
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return responseError(resp)
			}
			_, err = io.Copy(a.stdout, resp.Body)
			if err != nil && follow && ctx.Err() != nil {
				return nil // Ctrl-C ends a follow; that is success
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new log records until interrupted")
	f.IntVar(&tail, "tail", 0, "print only the newest N records (default: all, or none with --follow)")
	return cmd
}

// responseError turns a failed response from one of Flint's own endpoints into an error: an AWS
// error (X-Amzn-ErrorType and a JSON message) as a smithy.APIError, anything else as its status
// and text.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if typ := resp.Header.Get("X-Amzn-ErrorType"); typ != "" {
		code, _, _ := strings.Cut(typ, ":")
		var msg struct {
			Message      string `json:"Message"`
			LowerMessage string `json:"message"`
		}
		_ = json.Unmarshal(body, &msg) // a body that is not JSON leaves the code alone
		m := msg.Message
		if m == "" {
			m = msg.LowerMessage
		}
		return &smithy.GenericAPIError{Code: code, Message: m}
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		return fmt.Errorf("%s %s", resp.Request.URL.Path, resp.Status)
	}
	return fmt.Errorf("%s %s: %s", resp.Request.URL.Path, resp.Status, text)
}
