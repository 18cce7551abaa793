package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/sigv4"
)

// keysCommand manages the access keys a server checks SigV4 signatures against. It edits the
// keys file directly (a running server picks changes up within a second), so it works before
// the first start and needs no credentials itself: whoever can write the data directory owns
// the server anyway.
func (a *app) keysCommand() *cobra.Command {
	dataDir, keysFile := "flint-data", ""
	if v := os.Getenv("FLINT_DATA"); v != "" {
		dataDir = v
	}
	load := func() (*sigv4.Keys, error) {
		path := keysFile
		if path == "" {
			path = filepath.Join(dataDir, "access-keys.json")
		}
		return sigv4.Load(path)
	}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the access keys Flint's API accepts (SigV4)",
		Long: "Manage the access keys whose SigV4 signatures Flint's API accepts. With none, 'flint serve'\n" +
			"runs in local-development mode: requests are not authenticated and only loopback\n" +
			"addresses may be served. A running server picks changes up within a second.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data", dataDir, "the server's data directory (env FLINT_DATA)")
	cmd.PersistentFlags().StringVar(&keysFile, "keys-file", keysFile, "the keys file (default DATA/access-keys.json)")
	var desc string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an access key and print it (the secret is shown this once)",
		Args:  rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := load()
			if err != nil {
				return err
			}
			c, err := keys.Create(desc)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, c)
			}
			fmt.Fprintf(a.stdout, "AccessKeyId:     %s\nSecretAccessKey: %s\n", c.AccessKeyID, c.SecretAccessKey)
			fmt.Fprintf(a.stderr, "use it with: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=<secret> aws --endpoint-url %s lambda list-functions\n", c.AccessKeyID, a.endpoint)
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the key is for")
	create.Flags().BoolVar(&asJSON, "json", false, "print the key (with its secret) as JSON")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the access keys (without their secrets)",
		Args:  rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := load()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, keys.List())
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tCREATED\tDESCRIPTION")
			for _, c := range keys.List() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.AccessKeyID, c.Created.UTC().Format("2006-01-02T15:04:05Z"), c.Description)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the keys (without their secrets) as JSON")
	del := &cobra.Command{
		Use:   "delete ACCESS_KEY_ID",
		Short: "Delete an access key",
		Args:  rangeArgs(1, 1, "ACCESS_KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := load()
			if err != nil {
				return err
			}
			return keys.Delete(args[0])
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate-master",
		Short: "Rotate the master key of a running server (rewraps every stored secret, no downtime)",
		Long: "Ask the running server (--endpoint) to make a new master key active, rewrap the data keys of\n" +
			"every function's variables and every secret under it, and retire the old master keys.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			client, err := a.flintHTTPClient(ctx, apiTimeout)
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/flint/v1/master-key/rotate", nil)
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
			_, err = io.Copy(a.stdout, resp.Body)
			fmt.Fprintln(a.stdout)
			return err
		},
	}
	cmd.AddCommand(create, list, del, rotate)
	return cmd
}
