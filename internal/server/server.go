// Package server is Flint's composition root: it builds every part from a config.Config, starts
// them in order and stops them in reverse. main and the tests use it the same way.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/api"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/console"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/cwlogs"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/httpfront"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/kinesis"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/sandbox/linux"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/scheduler"
	"github.com/flint-run/flint/internal/secrets"
	"github.com/flint-run/flint/internal/sigv4"
	"github.com/flint-run/flint/internal/sns"
	"github.com/flint-run/flint/internal/sqs"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/telemetry"
	"github.com/flint-run/flint/internal/tlscert"
	"github.com/flint-run/flint/internal/worker"
)

// backends are the sandbox backends a config can name ("auto": linux where it can run).
var backends = map[string]func(cfg config.Config, dataDir string, log *slog.Logger) (sandbox.Backend, error){
	"process": func(cfg config.Config, _ string, _ *slog.Logger) (sandbox.Backend, error) {
		return process.New(cfg.RuntimeHost), nil
	},
	"linux": func(cfg config.Config, dataDir string, log *slog.Logger) (sandbox.Backend, error) {
		return linux.New(linux.Config{StateDir: filepath.Join(dataDir, "sandboxes"), CgroupParent: cfg.CgroupParent,
			Network: cfg.FunctionNetwork, Log: log})
	},
}

// pickBackend builds the configured backend; "auto" prefers linux and falls back to process with
// one warning that says why.
func (s *Server) pickBackend(ctx context.Context, dataDir string) (sandbox.Backend, error) {
	name := s.cfg.Sandbox
	if name == "auto" {
		b, err := backends["linux"](s.cfg, dataDir, s.log.With("part", "sandbox"))
		if err == nil {
			err = s.checkBackend(ctx, b)
		}
		if err == nil {
			return b, nil
		}
		if c, ok := b.(sandbox.Closer); ok && b != nil {
			_ = c.Close()
		}
		s.log.Warn("the linux sandbox cannot run here; functions run as plain processes without isolation", "reason", err)
		name = "process"
	}
	b, err := backends[name](s.cfg, dataDir, s.log.With("part", "sandbox"))
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	if err := s.checkBackend(ctx, b); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	return b, nil
}

// checkBackend first reclaims what a previous server killed with -9 left behind (processes,
// cgroups, roots), then checks the host can run the backend.
func (s *Server) checkBackend(ctx context.Context, b sandbox.Backend) error {
	if r, ok := b.(sandbox.Reclaimer); ok {
		if err := r.Reclaim(ctx); err != nil {
			s.log.Warn("reclaiming leftovers of a previous run", "err", err)
		}
	}
	return b.Check(ctx)
}

// Server is one Flint node.
type Server struct {
	cfg config.Config
	log *slog.Logger

	store   *store.Store
	logs    *logs.Store
	cwlogs  *cwlogs.Service // the CloudWatch Logs API over logs
	otlp    *telemetry.OTLP // nil: no OTLP export
	workers *worker.Manager
	invoke  *invoke.Service
	queue   *asyncq.Queue
	esm     *esm.Manager
	lanes   *cluster.Leases // stream mappings' owners (cluster nodes only)
	backend sandbox.Backend
	http    httpServer // the API's: net/http's, or with plain HTTP the front door in front of it
	ln      net.Listener
	tls     *tls.Config // the API's, nil when it serves plain HTTP
	keyring *crypt.Keyring
	devMode func() bool // the API does not check signatures
	lock    *os.File    // DATA/flint.lock, held until Close

	kinesis *kinesis.Service // the Kinesis Data Streams API over Flint's streams

	natsToken string // what outside NATS clients present (NATSListen)
	// limitsNode, when set (ShareLimits), names this node in the cluster's concurrency ledger.
	limitsNode string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool

	// Stopped apart from the rest, in the shutdown order (Close): first the parts that take
	// work (async consumer, event-source pollers, schedules), last the log publisher.
	stopIntake context.CancelFunc
	intake     sync.WaitGroup
	stopLogs   context.CancelFunc
	logsWG     sync.WaitGroup
}

// shutdownGrace is how long Close lets invocations already running finish (sync requests, async
// events, event-source batches) before it destroys their environments.
const shutdownGrace = 5 * time.Second

// New checks cfg and returns an unstarted server.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, ok := backends[cfg.Sandbox]; !ok && cfg.Sandbox != "auto" {
		return nil, fmt.Errorf("config: unknown sandbox backend %q", cfg.Sandbox)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}, nil
}

// Start opens the store, starts every part and begins serving; it returns once the API is up.
func (s *Server) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	cfg := s.cfg
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// First: a second server on the directory must fail here, before it touches anything.
	if s.lock, err = lockDataDir(dataDir); err != nil {
		return err
	}
	runtimeDir := filepath.Join(dataDir, "runtime")
	if err := runtimes.Install(runtimeDir); err != nil {
		return fmt.Errorf("install runtime clients: %w", err)
	}
	interps, err := runtimes.Resolve(ctx, runtimes.Options{Paths: cfg.RuntimePaths, Strict: cfg.StrictRuntimes,
		InstallDir: filepath.Join(dataDir, "runtimes")})
	if err != nil {
		return fmt.Errorf("runtimes: %w", err)
	}
	logRuntimes(s.log, interps)
	code, err := artifact.NewCache(filepath.Join(dataDir, "code"))
	if err != nil {
		return fmt.Errorf("code cache: %w", err)
	}
	if err := code.Sweep(); err != nil {
		s.log.Warn("sweeping the code cache", "err", err)
	}
	backend, err := s.pickBackend(ctx, dataDir)
	if err != nil {
		return err
	}
	s.backend = backend

	if s.tls, err = apiTLS(cfg, dataDir); err != nil {
		return err
	}
	keyFile := cfg.MasterKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, "master.key")
	}
	if s.keyring, err = crypt.LoadKeyring(keyFile, cfg.MasterKey); err != nil {
		return err
	}
	natsOpts := store.Options{Dir: dataDir, Listen: cfg.NATSListen, Token: cfg.NATSToken, Keyring: s.keyring,
		SyncAlways: cfg.Durability == "fsync", Log: s.log.With("part", "store")}
	if natsOpts.Cluster, err = clusterOptions(cfg); err != nil {
		return err
	}
	if natsOpts.External, err = externalOptions(cfg); err != nil {
		return err
	}
	if cfg.NATSListen != "" {
		// Outside clients always present the token, on loopback too: a local process (or a
		// function sharing the host's network) is no more trusted than a remote one, and
		// this does not depend on whether access keys exist yet (they can appear while
		// serving). Beyond loopback they also need the API's certificate.
		if natsOpts.Token == "" {
			if natsOpts.Token, err = natsToken(filepath.Join(dataDir, "nats-token")); err != nil {
				return err
			}
		}
		if !config.IsLoopback(cfg.NATSListen) {
			natsOpts.TLS = s.tls
		}
	}
	if s.store, err = store.Open(ctx, natsOpts); err != nil {
		return err
	}
	s.natsToken = natsOpts.Token
	if cfg.NATSListen != "" && cfg.NATSToken == "" {
		s.log.Info("NATS clients authenticate with the token in the data directory", "nats_token", filepath.Join(dataDir, "nats-token"))
	}
	if s.logs, err = logs.NewStore(ctx, s.store.JetStream(), logs.StoreConfig{MaxAge: cfg.LogRetention}, s.log.With("part", "logs")); err != nil {
		return fmt.Errorf("log store: %w", err)
	}
	budget := cfg.MemoryBudgetMB
	if budget == 0 {
		budget = machineMemoryMB() * 3 / 4
	}
	metrics := telemetry.New(cfg.Node, func() (int, int, int, int) {
		st := s.workers.Stats()
		return st.Starting, st.Idle, st.Busy, st.Provisioned
	}, s.queueStats)
	consoleStats := console.NewStats(nil)
	if cfg.OTLPEndpoint != "" {
		if s.otlp, err = telemetry.NewOTLP(ctx, telemetry.OTLPConfig{Endpoint: cfg.OTLPEndpoint, Node: cfg.Node}); err != nil {
			return err
		}
		metrics.Export(s.otlp)
	}
	secretsSvc := secrets.New(secrets.Config{Store: s.store.Secrets(), Crypt: s.keyring, Region: cfg.Region, AccountID: cfg.AccountID, Log: s.log.With("part", "secrets")})
	s.workers = worker.New(worker.Config{
		// Functions written for AWS's Parameters and Secrets Lambda Extension find it at its port.
		Services: []worker.Service{{Port: sandbox.Port{Number: 2773, EnvVar: "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"},
			Handler: func(env worker.EnvInfo) http.Handler { return secretsSvc.ExtensionHandler(env.SessionToken) }}},
		Backend: backend, RuntimeDir: runtimeDir, Region: cfg.Region, KeepAlive: cfg.KeepAlive,
		InitTimeout: cfg.InitTimeout, MemoryBudgetMB: budget, SpareMemoryMB: cfg.SpareMemoryMB, FreezeAfter: cfg.FreezeAfter, Logs: s.logs, Observer: observers{metrics, consoleStats},
		Log: s.log.With("part", "worker"), Runtimes: interps,
	})
	limits := artifact.DefaultLimits()
	s.invoke = invoke.New(invoke.RegistryOf(s.store), s.workers, code, limits, cfg.AccountConcurrency, metrics, s.log.With("part", "invoke"))
	if s.otlp != nil {
		s.invoke.SetTracer(s.otlp)
	}
	ledger, err := s.ledger(ctx)
	if err != nil {
		return err
	}
	if cfg.Clustered() {
		// Provisioned concurrency is the cluster's, and a drained node takes no work from its
		// first moment, restarts included (docs/CLUSTER.md).
		s.invoke.SpreadProvisioned()
		drained, err := cluster.Drained(ctx, s.store.Nodes(), cfg.Node)
		if err != nil {
			return err
		}
		s.invoke.SetDraining(drained)
	}

	if s.queue, err = asyncq.New(ctx, asyncq.Config{
		JS: s.store.JetStream(), Invoker: s.invoke, Settings: s.invoke,
		RetryDelays: []time.Duration{cfg.AsyncRetryDelay, 2 * cfg.AsyncRetryDelay},
		ThrottleMin: cfg.AsyncThrottleDelay, AckWait: cfg.AsyncAckWait, Log: s.log.With("part", "async"),
	}); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	logsCtx, stopLogs := context.WithCancel(context.Background())
	s.stopLogs = stopLogs
	intakeCtx, stopIntake := context.WithCancel(context.Background())
	s.stopIntake = stopIntake
	s.goRunIn(&s.logsWG, "logs", func() error { return s.logs.Run(logsCtx) })
	s.goRun("reaper", func() error { return s.workers.Run(runCtx) })
	s.goRun("function watch", func() error { return s.invoke.Run(runCtx) })
	if ledger != nil {
		s.goRun("concurrency ledger", func() error { return ledger.Run(runCtx) })
	}
	s.goRunIn(&s.intake, "async queue", func() error { return s.queue.Run(intakeCtx) })
	if cfg.Clustered() {
		// Invocations forwarded from other nodes are intake too: shutdown stops taking them first
		// and lets those running finish within the grace period.
		s.goRunIn(&s.intake, "placement", func() error {
			return s.invoke.Route(intakeCtx, invoke.RouteConfig{Node: cfg.Node, Conn: s.store.JetStream().Conn()})
		})
	}
	schedules := scheduler.New(s.store.Schedules(), s.queue, s.log.With("part", "scheduler"))
	schedules.ScaleMinute(cfg.ScheduleMinute) // tests only; 0 keeps a real minute
	s.goRunIn(&s.intake, "scheduler", func() error { return schedules.Run(intakeCtx) })
	owner, err := s.laneOwner(ctx)
	if err != nil {
		return err
	}
	sqsSvc := sqs.New(sqs.Config{JS: s.store.JetStream(), Store: s.store.SQSQueues(), Region: cfg.Region, AccountID: cfg.AccountID, Log: s.log.With("part", "sqs")})
	s.goRunIn(&s.intake, "sqs message move tasks", func() error { return sqsSvc.Run(intakeCtx) })
	snsSigner, err := sns.LoadSigner(filepath.Join(dataDir, "sns"))
	if err != nil {
		return err
	}
	snsSvc := sns.New(sns.Config{JS: s.store.JetStream(), Store: s.store.SNS(), Async: s.queue, SQS: sqsSvc,
		Region: cfg.Region, AccountID: cfg.AccountID, Signer: snsSigner, Log: s.log.With("part", "sns")})
	s.goRunIn(&s.intake, "sns http deliveries", func() error { return snsSvc.Run(intakeCtx) })
	s.esm = esm.New(esm.Config{JS: s.store.JetStream(), Mappings: s.store.Mappings(), Checkpoints: s.store.Checkpoints(), Invoker: s.invoke, SQS: sqsSvc,
		AckWait: cfg.AsyncAckWait, StreamRetryDelay: cfg.StreamRetryDelay, Region: cfg.Region, Owner: owner, Log: s.log.With("part", "esm")})
	s.goRunIn(&s.intake, "event source mappings", func() error { return s.esm.Run(intakeCtx) })
	select {
	case <-s.invoke.Ready():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("function cache did not load within 30s")
	}

	keysFile := cfg.KeysFile
	if keysFile == "" {
		keysFile = filepath.Join(dataDir, "access-keys.json")
	}
	keys, err := sigv4.Load(keysFile)
	if err != nil {
		return err
	}
	loopback := config.IsLoopback(cfg.Listen)
	if keys.Len() == 0 && !loopback {
		return fmt.Errorf("refusing to serve the API on %s without access keys: anyone who reaches it could run code; create one with `flint keys create --data %s` (or listen on 127.0.0.1)", cfg.Listen, cfg.DataDir)
	}
	auth, err := sigv4.NewVerifier(sigv4.Config{Keys: keys, Region: cfg.Region, Service: api.SigningService})
	if err != nil {
		return err
	}
	s.devMode = func() bool { return loopback && keys.Len() == 0 }
	if s.devMode() {
		s.log.Info("local development mode: no access keys, so API requests are not authenticated (loopback only); `flint keys create` turns SigV4 verification on", "keys", keysFile)
	}
	s.goRun("access keys", func() error { return watchKeys(runCtx, keys, s.log) })
	account := lambda.Account{Region: cfg.Region, ID: cfg.AccountID}
	plane := control.New(control.Config{Store: s.store, View: s.invoke, Invoke: s.invoke, Account: account,
		Log: s.log.With("part", "control"), Code: code, Limits: limits, CodeGrace: cfg.CodeGrace, Runtimes: interps,
		Scheduler: schedules, Keys: s.keyring, Secrets: secretsSvc, SQS: sqsSvc})
	s.goRun("code collector", func() error { return plane.Code.Run(runCtx) })
	nodes := cluster.New(cluster.Config{Name: nodeName(cfg), Address: s.URL, Sandbox: backend.Name(), Records: s.store.Nodes(),
		Load: s.load, Log: s.log.With("part", "cluster"), OnDrain: s.invoke.SetDraining, Quorum: s.store.Quorum})
	metrics.Cluster(s.clusterStats(nodes, ledger))
	s.cwlogs = cwlogs.New(cwlogs.Config{Store: s.logs, Region: cfg.Region, AccountID: cfg.AccountID, Log: s.log.With("part", "cwlogs")})
	s.goRun("log retention", func() error { return s.cwlogs.Run(runCtx) })
	s.kinesis = kinesis.New(kinesis.Config{JS: s.store.JetStream(), Region: cfg.Region, AccountID: cfg.AccountID, Log: s.log.With("part", "kinesis")})
	metrics.Functions(s.functionStats)
	handler := api.New(api.Config{Control: plane, Invoke: s.invoke, Logs: s.logs, Metrics: metrics, Queue: s.queue,
		Account: account, Log: s.log.With("part", "api"), Runtimes: interps, Nodes: nodes,
		Secrets: secretsSvc, CWLogs: s.cwlogs, Kinesis: s.kinesis, SQS: sqsSvc, Auth: auth, DevMode: s.devMode, Keyring: s.keyring,
		SNS: snsSvc, MappingLag: s.esm.Lag,
		Console: console.New(console.Config{Control: plane, Invoke: s.invoke, Logs: s.logs, Queue: s.queue, Secrets: secretsSvc,
			Stats: consoleStats, Account: account, Keys: keys, DevMode: s.devMode, TLS: s.tls != nil,
			Environments: s.environments, FunctionEnvironments: s.functionEnvironments, MappingLag: s.mappingLag, Log: s.log.With("part", "console")})})
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	std := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Invokes can legitimately run for the function's whole timeout (up to 900 s).
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 16 * time.Minute,
		IdleTimeout:  5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ln := s.ln
	s.http = std
	if s.tls != nil {
		std.TLSConfig = s.tls
		ln = tls.NewListener(ln, s.tls)
	} else {
		// Invokes skip net/http's per-request machinery; every other request is net/http's
		// (docs/ARCHITECTURE.md, "Sync invoke").
		s.http = httpfront.New(httpfront.Config{Handler: handler, Fallback: std, Serves: api.IsInvoke,
			IdleTimeout: std.IdleTimeout, HeaderTimeout: std.ReadHeaderTimeout, ReadTimeout: std.ReadTimeout,
			WriteTimeout: std.WriteTimeout, Log: s.log.With("part", "http")})
	}
	s.goRun("http", func() error {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err := nodes.Announce(ctx); err != nil && !errors.Is(err, store.ErrNoQuorum) {
		s.log.Warn("first heartbeat", "err", err)
	}
	s.goRun("heartbeat", func() error { return nodes.Run(runCtx) })
	s.log.Info("flint started", "api", s.URL(), "console", s.URL()+console.Prefix, "data", dataDir, "sandbox", backend.Name(), "nats", s.store.ClientURL())
	return nil
}

// httpServer serves the API on a listener: an *http.Server or an *httpfront.Server.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// observers tells each of its observers about every finished invocation (the metrics and the
// console's statistics).
type observers []worker.Observer

func (o observers) Invoked(inv telemetry.Invocation) {
	for _, x := range o {
		x.Invoked(inv)
	}
}

// environments counts this node's environments by state, for the console.
func (s *Server) environments() console.Environments {
	st := s.workers.Stats()
	return console.Environments{Starting: st.Starting, Idle: max(st.Idle-st.Frozen, 0), Frozen: st.Frozen, Busy: st.Busy,
		Provisioned: st.Provisioned, Spares: st.Spares}
}

// functionEnvironments counts fn's environments on this node (all its versions), for the console.
func (s *Server) functionEnvironments(fn string) console.Environments {
	var e console.Environments
	for _, p := range s.workers.Pools() {
		if p.Function == fn {
			e.Starting, e.Idle, e.Busy, e.Frozen, e.Provisioned = e.Starting+p.Starting, e.Idle+p.Idle, e.Busy+p.Busy,
				e.Frozen+p.Frozen, e.Provisioned+p.Provisioned
		}
	}
	return e
}

// mappingLag is each event source mapping's lag this node knows, for the console.
func (s *Server) mappingLag(ctx context.Context) map[string]console.MappingLag {
	out := map[string]console.MappingLag{}
	for _, l := range s.esm.Lag(ctx) {
		out[l.UUID] = console.MappingLag{Behind: l.Behind, OldestAge: l.OldestAge}
	}
	return out
}

// load is what this node's heartbeat reports of its environments.
func (s *Server) load() cluster.Load {
	st := s.workers.Stats()
	return cluster.Load{Environments: st.Starting + st.Idle + st.Busy, Busy: st.Busy, MemoryMB: st.MemoryMB, BudgetMB: st.BudgetMB}
}

// nodeName names this node in the cluster's membership: its --node name in a cluster (several
// nodes may share a host), else the host's name.
func nodeName(cfg config.Config) string {
	if cfg.Node != "" {
		return cfg.Node
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "flint"
}

// queueStats adapts the async queue's stats for metrics.
func (s *Server) queueStats() []telemetry.Queue {
	if s.queue == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.queue.Stats(ctx)
	if err != nil {
		s.log.Warn("async queue stats", "err", err)
		return nil
	}
	out := make([]telemetry.Queue, len(st))
	for i, q := range st {
		out[i] = telemetry.Queue{Function: q.Function, Depth: q.Depth, InFlight: q.InFlight, OldestAge: q.OldestAge}
	}
	return out
}

// functionStats adapts the per-function figures for metrics, read at scrape time.
func (s *Server) functionStats() telemetry.FunctionStats {
	st := telemetry.FunctionStats{Concurrency: s.invoke.Concurrency()}
	for _, p := range s.workers.Pools() {
		st.Environments = append(st.Environments, telemetry.Environments{Function: p.Function, Version: p.Version,
			Starting: p.Starting, Idle: p.Idle, Busy: p.Busy, Frozen: p.Frozen, Provisioned: p.Provisioned})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range s.esm.Lag(ctx) {
		name, _, _ := lambda.ParseFunctionName(l.FunctionArn)
		st.Mappings = append(st.Mappings, telemetry.MappingLag{UUID: l.UUID, Function: name, Behind: l.Behind, OldestAge: l.OldestAge})
	}
	return st
}

// machineMemoryMB reads MemTotal from /proc/meminfo (0 if unknown: no budget).
func machineMemoryMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb / 1024
		}
	}
	return 0
}

func (s *Server) goRun(name string, run func() error) { s.goRunIn(&s.wg, name, run) }

// goRunIn runs a part counted in wg.
func (s *Server) goRunIn(wg *sync.WaitGroup, name string, run func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(); err != nil {
			s.log.Error("part stopped", "part", name, "err", err)
		}
	}()
}

// URL is the Lambda API's base URL.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	if s.tls != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// DevMode reports whether the API runs unauthenticated (no access keys, loopback only).
func (s *Server) DevMode() bool { return s.devMode != nil && s.devMode() }

// watchKeys reloads the access keys when `flint keys` changes their file, until ctx ends.
func watchKeys(ctx context.Context, keys *sigv4.Keys, log *slog.Logger) error {
	stamp := func() string {
		st, err := os.Stat(keys.Path())
		if err != nil {
			return ""
		}
		return st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
	}
	last := stamp()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if now := stamp(); now != last {
			if err := keys.Reload(); err != nil {
				log.Warn("reload access keys (keeping the previous ones)", "err", err)
				continue
			}
			last = now
			log.Info("access keys reloaded", "keys", keys.Len())
		}
	}
}

// apiTLS loads the API's certificate (--tls-cert/--tls-key), or makes a self-signed one in
// DATA/tls; nil when the API serves plain HTTP.
func apiTLS(cfg config.Config, dataDir string) (*tls.Config, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		var hosts []string
		for _, addr := range []string{cfg.Listen, cfg.NATSListen} {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				hosts = append(hosts, h)
			}
		}
		var err error
		if certFile, keyFile, err = tlscert.SelfSigned(filepath.Join(dataDir, "tls"), hosts...); err != nil {
			return nil, err
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// natsToken reads the token outside NATS clients present, making one (0600) on first start.
func natsToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("nats token: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nats token: %w", err)
	}
	tok := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("nats token: %w", err)
	}
	return tok, nil
}

// NATSToken is the token outside NATS clients present ("" unless NATSListen was set).
func (s *Server) NATSToken() string {
	if s.cfg.NATSListen == "" {
		return ""
	}
	return s.natsToken
}

// JetStream is Flint's own JetStream context, with every right: for in-process tests and
// benchmarks (outside clients connect to NATSURL with NATSToken and get far less).
func (s *Server) JetStream() jetstream.JetStream {
	if s.store == nil {
		return nil
	}
	return s.store.JetStream()
}

// NATSURL is where outside NATS clients connect ("" unless NATSListen was set).
func (s *Server) NATSURL() string {
	if s.store == nil {
		return ""
	}
	return s.store.ClientURL()
}

// Sandbox names the backend environments run in.
func (s *Server) Sandbox() string {
	if s.backend == nil {
		return ""
	}
	return s.backend.Name()
}

// Workers exposes environment counts (for tests and metrics).
func (s *Server) Workers() *worker.Manager { return s.workers }

// Close stops the server, in this order (docs/ARCHITECTURE.md, "Shutdown order"):
//  1. stop taking work: the API's listener closes, the async consumer, event-source pollers and
//     schedules stop fetching (messages fetched and not started are handed back);
//  2. let the invocations already running finish, for up to shutdownGrace;
//  3. destroy every environment: invocations still running end with a platform error (a sync
//     caller gets a ServiceException, async events and batches are left for redelivery), and
//     every finished invocation's log record is handed to the log store;
//  4. flush the log store to JetStream and wait for its acks;
//  5. stop the watchers and the reaper, close NATS.
func (s *Server) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	grace, cancelGrace := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancelGrace()
	if s.stopIntake != nil {
		s.stopIntake()
	}
	httpDone := make(chan struct{})
	if s.http != nil {
		go func() {
			defer close(httpDone)
			_ = s.http.Shutdown(grace) // at the deadline, Close below ends what is left
		}()
	} else {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		close(httpDone)
	}
	intakeDone := make(chan struct{})
	go func() {
		s.intake.Wait()
		close(intakeDone)
	}()
	for _, done := range []chan struct{}{httpDone, intakeDone} {
		select {
		case <-done:
		case <-grace.Done():
		}
	}
	if grace.Err() != nil {
		s.log.Warn("invocations still running after the shutdown grace period are stopped", "grace", shutdownGrace)
	}
	if s.workers != nil {
		s.workers.Close()
	}
	<-httpDone
	if s.http != nil {
		// Requests whose invocations were just stopped are answering with their errors.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
	}
	<-intakeDone
	if s.stopLogs != nil {
		s.stopLogs()
	}
	s.logsWG.Wait()
	if s.otlp != nil { // after the workers: every invocation has been recorded
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.otlp.Close(ctx); err != nil {
			s.log.Warn("otlp export at shutdown", "err", err)
		}
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if c, ok := s.backend.(sandbox.Closer); ok {
		_ = c.Close()
	}
	s.wg.Wait()
	if s.store != nil {
		s.store.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
	return nil
}
