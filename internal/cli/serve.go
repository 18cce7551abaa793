package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

func (a *app) serveCommand() *cobra.Command {
	cfg := config.Default()
	if v := os.Getenv("FLINT_LISTEN"); v != "" {
		cfg.Listen = v
	}
	if v := os.Getenv("FLINT_DATA"); v != "" {
		cfg.DataDir = v
	}
	cfg.MasterKey = os.Getenv("FLINT_MASTER_KEY")
	cfg.Node = os.Getenv("FLINT_NODE")
	cfg.ClusterListen = os.Getenv("FLINT_CLUSTER_LISTEN")
	cfg.ClusterAdvertise = os.Getenv("FLINT_CLUSTER_ADVERTISE")
	if v := os.Getenv("FLINT_JOIN"); v != "" {
		cfg.Join = strings.Split(v, ",")
	}
	if v := os.Getenv("FLINT_NATS"); v != "" {
		cfg.NATS = strings.Split(v, ",")
	}
	cfg.NATSCreds = os.Getenv("FLINT_NATS_CREDS")
	cfg.NATSNKey = os.Getenv("FLINT_NATS_NKEY")
	cfg.NATSUser = os.Getenv("FLINT_NATS_USER")
	cfg.NATSPassword = os.Getenv("FLINT_NATS_PASSWORD")
	logLevel := "info"
	var runtimePaths []string
	var pprofAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Lambda API and the functions' execution environments",
		Long: "Run Flint: the Lambda REST API, the functions' execution environments and the embedded\n" +
			"NATS JetStream that keeps their state (or an existing NATS: --nats). Stops cleanly on Ctrl-C (SIGINT) or SIGTERM.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf(cmd, "--log-level %q: want debug, info, warn or error", logLevel)
			}
			for _, kv := range runtimePaths {
				rt, p, ok := strings.Cut(kv, "=")
				if !ok || rt == "" || p == "" {
					return usageErrorf(cmd, "--runtime-path %q: want RUNTIME=PATH, e.g. python3.12=/usr/local/bin/python3.12", kv)
				}
				if cfg.RuntimePaths == nil {
					cfg.RuntimePaths = map[string]string{}
				}
				cfg.RuntimePaths[rt] = p
			}
			if err := cfg.Validate(); err != nil {
				return usageErrorf(cmd, "invalid configuration: %w", err)
			}
			if pprofAddr != "" {
				_, stop, err := servePprof(pprofAddr, slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})))
				if err != nil {
					return usageErrorf(cmd, "%w", err)
				}
				defer stop()
			}
			return a.serve(cmd.Context(), cfg, level)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address of the Lambda API, host:port (env FLINT_LISTEN)")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory for state, code and logs (env FLINT_DATA)")
	f.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen,
		"also open the embedded NATS server to other clients at host:port: token required, event-source publishes and stream reads only (beyond loopback: TLS too)")
	f.StringVar(&cfg.NATSToken, "nats-token", cfg.NATSToken,
		"token NATS clients must present (default: made once, kept in DATA/nats-token)")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", cfg.MasterKeyFile,
		"file of the master keys that encrypt environment variables and secrets at rest (default DATA/master.key; env FLINT_MASTER_KEY instead)")
	f.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate: serve the API and function URLs over HTTPS (with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key of --tls-cert")
	f.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", cfg.TLSSelfSigned,
		"serve HTTPS with a self-signed certificate kept in DATA/tls (clients: aws --ca-bundle DATA/tls/cert.pem)")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region named in ARNs")
	f.DurationVar(&cfg.KeepAlive, "keep-alive", cfg.KeepAlive, "how long an idle execution environment is kept")
	f.StringVar(&cfg.Sandbox, "sandbox", cfg.Sandbox,
		"sandbox backend: linux (namespaces, cgroups, seccomp), process (no isolation) or auto (linux where it can run)")
	f.StringVar(&cfg.FunctionNetwork, "function-network", cfg.FunctionNetwork,
		"what functions in the linux sandbox reach: none (their own loopback only) or egress (also the network beyond this host, through NAT; never this host's services or other functions; host is an alias)")
	f.DurationVar(&cfg.FreezeAfter, "freeze-after", cfg.FreezeAfter, "how long an idle environment runs before it is frozen (0: never)")
	f.DurationVar(&cfg.CodeGrace, "code-grace", cfg.CodeGrace, "how long code nothing references any more is kept before it is deleted (0: at once)")
	f.IntVar(&cfg.AccountConcurrency, "account-concurrency", cfg.AccountConcurrency, "the account's concurrent-execution limit")
	f.IntVar(&cfg.MemoryBudgetMB, "memory-budget", cfg.MemoryBudgetMB,
		"MB of MemorySize live environments may hold on this node (0: three quarters of the machine's memory)")
	f.IntVar(&cfg.SpareMemoryMB, "spare-memory", cfg.SpareMemoryMB,
		"MB that pre-initialized Python and Node runtimes, kept ready for cold starts as demand asks, may hold (0: none)")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", cfg.OTLPEndpoint,
		"an OpenTelemetry collector's OTLP/HTTP base URL (http://HOST:4318) to export invocation spans and FaaS metrics to (off when empty)")
	f.StringVar(&cfg.Durability, "durability", cfg.Durability,
		"when an accepted async event is safe: os (written to the OS: survives kill -9) or fsync (on disk: survives power loss)")
	f.DurationVar(&cfg.AsyncRetryDelay, "async-retry-delay", cfg.AsyncRetryDelay,
		"wait before a failed async event's first retry (the second waits twice as long)")
	f.DurationVar(&cfg.AsyncAckWait, "async-ack-wait", cfg.AsyncAckWait,
		"how long an async event or queue message left running by a crash waits before it is delivered again")
	f.DurationVar(&cfg.StreamRetryDelay, "stream-retry-delay", cfg.StreamRetryDelay,
		"wait before a stream event source mapping first retries a failed batch (doubling up to 30s)")
	f.StringArrayVar(&runtimePaths, "runtime-path", nil,
		"RUNTIME=PATH: the interpreter a Python or Node runtime runs on, e.g. python3.12=/usr/local/bin/python3.12 (repeatable)")
	f.BoolVar(&cfg.StrictRuntimes, "strict-runtimes", cfg.StrictRuntimes,
		"refuse functions whose runtime has no interpreter of its own version here (default: run them on the nearest version, with a warning)")
	f.StringVar(&cfg.Node, "node", cfg.Node,
		"this node's name in a cluster: unique, kept across restarts (env FLINT_NODE; with --cluster-listen and --join, or --nats; docs/CLUSTER.md)")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", cfg.ClusterListen,
		"host:port where this node takes the other cluster nodes' routes (env FLINT_CLUSTER_LISTEN; beyond loopback needs --tls-cert; every node needs the same master key)")
	f.StringSliceVar(&cfg.Join, "join", cfg.Join,
		"the other cluster nodes' --cluster-listen addresses, comma-separated: list every other node (env FLINT_JOIN)")
	f.StringSliceVar(&cfg.NATS, "nats", cfg.NATS,
		"URLs of an existing NATS server or cluster with JetStream to keep the state in instead of the embedded server, comma-separated: nats://host:4222 or tls://host:4222, "+
			"user info for a user and password or a token (env FLINT_NATS; needs --node and the shared master key; docs/CLUSTER.md)")
	f.StringVar(&cfg.NATSCreds, "nats-creds", cfg.NATSCreds, "NATS credentials file: user JWT and NKey seed (env FLINT_NATS_CREDS)")
	f.StringVar(&cfg.NATSNKey, "nats-nkey", cfg.NATSNKey, "file of an NKey seed to authenticate to NATS with (env FLINT_NATS_NKEY)")
	f.StringVar(&cfg.NATSUser, "nats-user", cfg.NATSUser, "NATS user (env FLINT_NATS_USER)")
	f.StringVar(&cfg.NATSPassword, "nats-password", cfg.NATSPassword, "NATS user's password (env FLINT_NATS_PASSWORD, which keeps it out of the process list)")
	f.StringVar(&cfg.NATSTLSCA, "nats-tls-ca", cfg.NATSTLSCA, "PEM file of the CAs of the NATS servers' certificates (default: the system's roots); makes the connection TLS")
	f.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", cfg.NATSTLSCert, "PEM client certificate for NATS servers that verify clients (with --nats-tls-key)")
	f.StringVar(&cfg.NATSTLSKey, "nats-tls-key", cfg.NATSTLSKey, "PEM private key of --nats-tls-cert")
	f.IntVar(&cfg.NATSReplicas, "nats-replicas", cfg.NATSReplicas,
		"copies of each stream and bucket Flint creates in the external NATS (0: the existing ones', else 3 on a cluster, 1 on a single server); the same on every node")
	f.StringVar(&cfg.ClusterAdvertise, "cluster-advertise", cfg.ClusterAdvertise,
		"host:port the other nodes are told to dial for this node's routes, when not --cluster-listen (a port forward or proxy; env FLINT_CLUSTER_ADVERTISE)")
	f.StringVar(&logLevel, "log-level", logLevel, "operator log level: debug, info, warn or error")
	f.DurationVar(&cfg.ScheduleMinute, "schedule-minute", cfg.ScheduleMinute,
		"testing only: how long a minute of rate() schedules lasts, e.g. 1s")
	_ = f.MarkHidden("schedule-minute")
	f.StringVar(&pprofAddr, "pprof", "", "profiling only: serve Go's pprof handlers on this loopback host:port")
	_ = f.MarkHidden("pprof")
	return cmd
}

// serve runs a Flint server until ctx ends, then closes it.
func (a *app) serve(ctx context.Context, cfg config.Config, level slog.Level) error {
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, log)
	if err != nil {
		return fmt.Errorf("create server: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		if cerr := srv.Close(); cerr != nil {
			log.Warn("close after failed start", "err", cerr)
		}
		if inUse := (*server.DataDirInUseError)(nil); errors.As(err, &inUse) {
			return err // says all there is to say, on its own
		}
		return fmt.Errorf("start server: %w", err)
	}
	dataDir := cfg.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	fmt.Fprintf(a.stderr, "flint: serving the Lambda API at %s (data in %s)\n", srv.URL(), dataDir)
	if srv.DevMode() {
		fmt.Fprintf(a.stderr, "flint: local development mode: no access keys, requests are not authenticated (create one: flint keys create --data %s)\n", dataDir)
	}

	<-ctx.Done()
	// From here a second Ctrl-C kills the process instead of waiting for a slow shutdown.
	if a.stopSignals != nil {
		a.stopSignals()
	}
	log.Info("shutting down")
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
