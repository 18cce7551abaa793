package cli

import (
	"fmt"
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
			fmt.Fprintf(a.stdout, "AccessKeyId:     %s\nSecretAccessKey: %s\n", c.AccessKeyID, c.SecretAccessKey)
			fmt.Fprintf(a.stderr, "use it with: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=<secret> aws --endpoint-url %s lambda list-functions\n", c.AccessKeyID, a.endpoint)
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the key is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the access keys (without their secrets)",
		Args:  rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := load()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tCREATED\tDESCRIPTION")
			for _, c := range keys.List() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.AccessKeyID, c.Created.UTC().Format("2006-01-02T15:04:05Z"), c.Description)
			}
			return tw.Flush()
		},
	}
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
	cmd.AddCommand(create, list, del)
	return cmd
}
