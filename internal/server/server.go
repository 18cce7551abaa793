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
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/api"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/sandbox/linux"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/scheduler"
	"github.com/flint-run/flint/internal/secrets"
	"github.com/flint-run/flint/internal/sigv4"
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
		if c, ok := b.(io.Closer); ok && b != nil {
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
	if r, ok := b.(interface{ Reclaim(context.Context) error }); ok {
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
	workers *worker.Manager
	invoke  *invoke.Service
	queue   *asyncq.Queue
	esm     *esm.Manager
	backend sandbox.Backend
	http    *http.Server
	ln      net.Listener
	tls     *tls.Config // the API's, nil when it serves plain HTTP
	keyring *crypt.Keyring
	devMode func() bool // the API does not check signatures

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

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
	if cfg.NATSListen != "" && !config.IsLoopback(cfg.NATSListen) {
		// Exposed: outside clients need the API's certificate and a token.
		natsOpts.TLS = s.tls
		if natsOpts.Token == "" {
			if natsOpts.Token, err = natsToken(filepath.Join(dataDir, "nats-token")); err != nil {
				return err
			}
		}
	}
	if s.store, err = store.Open(ctx, natsOpts); err != nil {
		return err
	}
	if s.logs, err = logs.NewStore(ctx, s.store.JetStream(), logs.StoreConfig{MaxAge: cfg.LogRetention}, s.log.With("part", "logs")); err != nil {
		return fmt.Errorf("log store: %w", err)
	}
	budget := cfg.MemoryBudgetMB
	if budget == 0 {
		budget = machineMemoryMB() * 3 / 4
	}
	metrics := telemetry.New(func() (int, int, int, int) {
		st := s.workers.Stats()
		return st.Starting, st.Idle, st.Busy, st.Provisioned
	}, s.queueStats)
	secretsSvc := secrets.New(secrets.Config{Store: s.store.Secrets(), Crypt: s.keyring, Region: cfg.Region, AccountID: cfg.AccountID, Log: s.log.With("part", "secrets")})
	s.workers = worker.New(worker.Config{
		// Functions written for AWS's Parameters and Secrets Lambda Extension find it at its port.
		Services: []worker.Service{{Port: sandbox.Port{Number: 2773, EnvVar: "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"},
			Handler: func(env worker.EnvInfo) http.Handler { return secretsSvc.ExtensionHandler(env.SessionToken) }}},
		Backend: backend, RuntimeDir: runtimeDir, Region: cfg.Region, KeepAlive: cfg.KeepAlive,
		InitTimeout: cfg.InitTimeout, MemoryBudgetMB: budget, FreezeAfter: cfg.FreezeAfter, Logs: s.logs, Observer: metrics,
		Log: s.log.With("part", "worker"), Runtimes: interps,
	})
	limits := artifact.DefaultLimits()
	s.invoke = invoke.New(s.store, s.workers, code, limits, cfg.AccountConcurrency, s.log.With("part", "invoke"))

	if s.queue, err = asyncq.New(ctx, asyncq.Config{
		JS: s.store.JetStream(), Invoker: s.invoke, Settings: s.invoke,
		RetryDelays: []time.Duration{cfg.AsyncRetryDelay, 2 * cfg.AsyncRetryDelay},
		ThrottleMin: cfg.AsyncThrottleDelay, AckWait: cfg.AsyncAckWait, Log: s.log.With("part", "async"),
	}); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.goRun("logs", func() error { return s.logs.Run(runCtx) })
	s.goRun("reaper", func() error { return s.workers.Run(runCtx) })
	s.goRun("function watch", func() error { return s.invoke.Run(runCtx) })
	s.goRun("async queue", func() error { return s.queue.Run(runCtx) })
	schedules := scheduler.New(s.store, s.queue, s.log.With("part", "scheduler"))
	s.goRun("scheduler", func() error { return schedules.Run(runCtx) })
	s.esm = esm.New(esm.Config{JS: s.store.JetStream(), Store: s.store, Checkpoints: s.store.Checkpoints(), Invoker: s.invoke,
		AckWait: cfg.AsyncAckWait, StreamRetryDelay: cfg.StreamRetryDelay, Region: cfg.Region, Log: s.log.With("part", "esm")})
	s.goRun("event source mappings", func() error { return s.esm.Run(runCtx) })
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
	handler := api.New(api.Config{Store: s.store, Invoke: s.invoke, Code: code, Limits: limits, Logs: s.logs, Metrics: metrics, Queue: s.queue, Schedules: schedules,
		Account: lambda.Account{Region: cfg.Region, ID: cfg.AccountID}, Log: s.log.With("part", "api"), Runtimes: interps,
		Secrets: secretsSvc, Auth: auth, DevMode: s.devMode, Keyring: s.keyring})
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Invokes can legitimately run for the function's whole timeout (up to 900 s).
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 16 * time.Minute,
		IdleTimeout:  5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ln := s.ln
	if s.tls != nil {
		s.http.TLSConfig = s.tls
		ln = tls.NewListener(ln, s.tls)
	}
	s.goRun("http", func() error {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	s.log.Info("flint started", "api", s.URL(), "data", dataDir, "sandbox", backend.Name(), "nats", s.store.ClientURL())
	return nil
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

func (s *Server) goRun(name string, run func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
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

// Close stops the server. Order: stop taking requests (in-flight ones get a grace period), stop
// the watchers and the async consumer (events still running are left unacknowledged and come
// back after a restart), destroy every environment, wait for the parts, close the store.
func (s *Server) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
	} else if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.workers != nil {
		s.workers.Close()
	}
	if c, ok := s.backend.(io.Closer); ok {
		_ = c.Close()
	}
	s.wg.Wait()
	if s.store != nil {
		s.store.Close()
	}
	return nil
}
