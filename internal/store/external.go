package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExternalOptions keep Flint's state in an existing NATS server or cluster with JetStream
// instead of the embedded server (flint serve --nats; docs/CLUSTER.md, "Using an existing NATS
// cluster"). Every Flint node on it shares the registry, the async queue and the logs, as
// embedded cluster nodes do.
type ExternalOptions struct {
	// URLs of the servers (nats:// or tls://); user info in a URL authenticates (user and
	// password, or a token), as in every NATS client.
	URLs []string
	// Node names this node's connection (the servers' monitoring shows it).
	Node string
	// Creds is a credentials file (user JWT and NKey seed); NKey a file holding an NKey seed;
	// User and Password a user's. At most one of them, or the URLs' user info.
	Creds, NKey    string
	User, Password string
	// TLS, when set, is required of the connection (ExternalTLS builds it from the options
	// NATS users know); a tls:// URL or a server that requires TLS also gets TLS without it.
	TLS *tls.Config
	// Replicas of everything Flint creates: 0 decides (externalReplicas).
	Replicas int
}

// minPayload is the max_payload Flint needs of the servers: a forwarded invocation carries up
// to 6 MB each way (invoke/route.go) and an async event up to 1 MB plus its envelope. NATS's
// default is 1 MB.
const minPayload = 8 << 20

// ErrReplicas: the replica count this node was given is not the one Flint's assets already
// have in the external NATS (every node must use one count).
var ErrReplicas = errors.New("replica count differs from the existing assets'")

// ExternalTLS is the TLS configuration of the connection to an external NATS: the servers'
// certificates are verified against caFile's CAs ("" means the system's roots), and certFile
// and keyFile (both or neither) are this node's client certificate for servers that verify
// clients.
func ExternalTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("nats tls ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats tls ca: no PEM certificate in %s", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("nats tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// redact is u without its user info (a password or a token), for messages and logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.LastIndex(u, "@"); i >= 0 {
			return "…" + u[i:]
		}
		return u
	}
	if p.User != nil {
		p.User = url.User("REDACTED")
	}
	return p.String()
}

func redactAll(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redact(u)
	}
	return strings.Join(out, ",")
}

// openExternal connects to the external NATS and opens Flint's assets there.
func openExternal(ctx context.Context, opts Options) (*Store, error) {
	x := opts.External
	if opts.Listen != "" || opts.Cluster != nil {
		return nil, errors.New("store: an external NATS excludes the embedded server's listener and cluster")
	}
	if len(x.URLs) == 0 || x.Node == "" {
		return nil, errors.New("store: an external NATS needs its URLs and this node's name")
	}
	if err := checkExternalDir(opts.Dir); err != nil {
		return nil, err
	}
	if opts.SyncAlways {
		opts.Log.Warn("durability fsync on an external NATS: whether each write is flushed to disk before it is acknowledged is the NATS servers' setting (sync_interval: always), which Flint cannot check")
	}
	servers := redactAll(x.URLs)
	log := opts.Log.With("nats", servers)
	// The last asynchronous error the servers sent (a permissions violation is reported only
	// so): a JetStream request it refused just goes unanswered, so a failure to open says it,
	// and a violation while opening ends the opening at once instead of after the retries.
	var said atomic.Pointer[error]
	ctx, refused := context.WithCancelCause(ctx)
	defer refused(nil)
	nopts := []nats.Option{
		nats.Name("flint " + x.Node),
		nats.MaxReconnects(-1), // reconnect forever; the watches and consumers resume
		nats.ReconnectWait(time.Second),
		nats.Timeout(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedServerName(), "url", redact(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			said.Store(&err)
			if errors.Is(err, nats.ErrPermissionViolation) {
				refused(err) // a no-op once Open has returned
			}
			log.Warn("NATS error", "err", err)
		}),
	}
	switch {
	case x.Creds != "":
		nopts = append(nopts, nats.UserCredentials(x.Creds))
	case x.NKey != "":
		o, err := nats.NkeyOptionFromSeed(x.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats nkey %s: %w", x.NKey, err)
		}
		nopts = append(nopts, o)
	case x.User != "":
		nopts = append(nopts, nats.UserInfo(x.User, x.Password))
	}
	if x.TLS != nil {
		nopts = append(nopts, nats.Secure(x.TLS))
	}
	nc, err := connect(ctx, strings.Join(x.URLs, ","), nopts, log)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return nil, fmt.Errorf("connect to NATS at %s: the server refused Flint's credentials (--nats-creds, --nats-nkey, --nats-user/--nats-password or the URL's user info): %w", servers, err)
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", servers, err)
	}
	fail := func(err error) (*Store, error) {
		nc.Close()
		if cause := context.Cause(ctx); errors.Is(cause, nats.ErrPermissionViolation) {
			return nil, fmt.Errorf("%w: Flint's NATS user lacks a permission it needs (docs/CLUSTER.md, \"Using an existing NATS cluster\"): %w", err, cause)
		}
		if e := said.Load(); e != nil {
			return nil, fmt.Errorf("%w (the NATS server said: %v)", err, *e)
		}
		return nil, err
	}
	if mp := nc.MaxPayload(); mp < minPayload {
		return fail(fmt.Errorf("NATS server %s allows messages of %d bytes: Flint needs %d (forwarded invocations carry up to 6 MB each way); set max_payload: 8MB in every server's configuration",
			nc.ConnectedServerName(), mp, minPayload))
	}
	inner, err := jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	if _, err := retry(ctx, log, "account info", nil, func(ctx context.Context) (*jetstream.AccountInfo, error) {
		return inner.AccountInfo(ctx)
	}); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fail(fmt.Errorf("NATS at %s: %w: Flint keeps its state in JetStream; enable it on the servers and for this user's account", servers, err))
		}
		return fail(fmt.Errorf("NATS at %s: JetStream account info: %w", servers, err))
	}
	replicas, err := externalReplicas(ctx, inner, nc.ConnectedClusterName() != "", x.Replicas, log)
	if err != nil {
		return fail(err)
	}
	if err := claimName(ctx, nc, x.Node, log); err != nil {
		return fail(err)
	}
	log.Info("using an external NATS", "server", nc.ConnectedServerName(), "cluster", nc.ConnectedClusterName(), "replicas", replicas)
	s := &Store{nc: nc, log: opts.Log, keyring: opts.Keyring, replicas: replicas, clustered: true}
	if err := s.open(ctx); err != nil {
		var apiErr *jetstream.APIError
		if replicas > 1 && errors.As(err, &apiErr) && apiErr.ErrorCode == 10005 { // no suitable peers for placement
			err = fmt.Errorf("%w: the NATS cluster has fewer than %d JetStream servers that can hold a copy; start every node with a --nats-replicas it can keep (1 on a cluster of 2)", err, replicas)
		}
		return fail(err)
	}
	if err := markExternal(opts.Dir, x.URLs); err != nil {
		return fail(err)
	}
	return s, nil
}

// connect connects to the first server of urls that answers. While none does (NATS starting
// with Flint, or down for a while) it waits as long as ctx allows, saying so every so often, as
// an embedded cluster node waits for the others; any other failure (credentials, TLS) is
// returned at once.
func connect(ctx context.Context, urls string, opts []nats.Option, log *slog.Logger) (*nats.Conn, error) {
	start, said := time.Now(), time.Now()
	for {
		nc, err := nats.Connect(urls, opts...)
		if err == nil || !unreachable(err) {
			return nc, err
		}
		if time.Since(said) >= 10*time.Second {
			said = time.Now()
			log.Warn("waiting for a NATS server to answer", "waiting", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %v): %w", err, time.Since(start).Round(time.Second), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// unreachable reports whether a connection failed for want of a server to talk to (refused,
// timed out, a name not resolving yet), rather than by what a server said (credentials, TLS).
func unreachable(err error) bool {
	var dns *net.DNSError
	var ne net.Error
	return errors.Is(err, nats.ErrNoServers) || errors.As(err, &dns) || (errors.As(err, &ne) && ne.Timeout())
}

// externalReplicas decides the replica count of what Flint creates on an external NATS. Every
// node must use one count (mixed counts confuse JetStream's elections, and a node opening an
// asset with another count would rescale it), and the first node's decision is on record: the
// replicas of the stream behind the functions bucket, the first asset any node creates. A node
// adopts it, or refuses to start when it was given another (want); with nothing on record it
// uses want, else 3 on a cluster (JetStream's usual count: any one server may be lost) and 1 on
// a server without one (which cannot keep more).
func externalReplicas(ctx context.Context, js jetstream.JetStream, clustered bool, want int, log *slog.Logger) (int, error) {
	name := "KV_" + functionsBucket
	st, err := retry(ctx, log, "stream info "+name, nil, func(ctx context.Context) (jetstream.Stream, error) {
		return js.Stream(ctx, name)
	})
	switch {
	case err == nil:
		have := st.CachedInfo().Config.Replicas
		if want != 0 && want != have {
			return 0, fmt.Errorf("%w: Flint's assets in this NATS have %d replicas and this node was given --nats-replicas %d; give every node the same count, or none (it then takes the assets')",
				ErrReplicas, have, want)
		}
		return have, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, fmt.Errorf("stream %s: %w", name, err)
	case want > 1 && !clustered:
		return 0, fmt.Errorf("--nats-replicas %d: the NATS server is not part of a cluster and keeps one copy of each stream", want)
	case want != 0:
		return want, nil
	case clustered:
		return 3, nil
	default:
		return 1, nil
	}
}

// presencePrefix + node is where a node on an external NATS answers for its name, for as long
// as its connection lives.
const presencePrefix = "flint.node."

// presence is a node's answer: who holds the name.
type presence struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// claimName makes this connection the one that answers for node's name, once no other does.
// The name keys the node's forwarding subject and its concurrency leases, so two live nodes
// sharing one would both run the invocations forwarded to it and hold each other's slots.
// Embedded cluster nodes get this from NATS (the name is the server's); here nothing else
// would catch it. While another connection answers it waits, saying so: a node restarted after
// its machine crashed finds its old connection answering until the servers' ping timeout
// drops it (NATS's default: a few minutes), which a refusal would turn into a failed restart.
// (Two nodes started with one name within the same moment can both miss each other.)
func claimName(ctx context.Context, nc *nats.Conn, node string, log *slog.Logger) error {
	subject := presencePrefix + node
	start, said := time.Now(), time.Time{}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := nc.RequestWithContext(rctx, subject, nil)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			break
		}
		var p presence
		if err == nil {
			_ = json.Unmarshal(m.Data, &p)
		}
		if time.Since(said) >= 10*time.Second {
			said = time.Now()
			log.Warn("another Flint node connected to this NATS has this node's name (--node): waiting for it to go (a crashed machine's connection lasts until NATS's ping timeout); give each node its own name",
				"node", node, "other_host", p.Host, "other_pid", p.PID, "other_since", p.Since, "waiting", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node name %s: another Flint node connected to this NATS answers for it (host %q, pid %d): give each node its own --node: %w", node, p.Host, p.PID, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	host, _ := os.Hostname()
	me, err := json.Marshal(presence{Host: host, PID: os.Getpid(), Since: time.Now().UTC()})
	if err != nil {
		return err
	}
	// The subscription lives as long as the connection (Close ends both).
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(me) }); err != nil {
		return fmt.Errorf("answer for node name %s: %w", node, err)
	}
	if err := nc.FlushTimeout(attemptTimeout); err != nil { // the servers know the subscription before Open returns
		return fmt.Errorf("answer for node name %s: %w", node, err)
	}
	return nil
}

// externalMarker records in the data directory that this node keeps its state in an external
// NATS, so that starting it with the embedded server (which would serve an empty registry) is
// refused.
const externalMarker = "nats-external"

// checkExternalDir refuses a data directory that holds an embedded server's JetStream state
// (the functions in it would seem lost, and stay behind unseen).
func checkExternalDir(dir string) error {
	js := filepath.Join(dir, "jetstream", "jetstream")
	streams, err := os.ReadDir(filepath.Join(js, "$G", "streams"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the data directory: %w", err)
	}
	_, err = os.Stat(filepath.Join(js, "$SYS", "_js_", "_meta_"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the data directory: %w", err)
	}
	if len(streams) > 0 || err == nil {
		return fmt.Errorf("%w: %s holds the embedded NATS server's state (Flint's functions and queues), which a node on an external NATS would not see; "+
			"start this node on a new data directory (moving the state into an external NATS is not supported yet: create the functions again through the API; docs/CLUSTER.md)",
			ErrModeMismatch, dir)
	}
	return nil
}

// markExternal marks dir as an external NATS node's, once its store opened there.
func markExternal(dir string, urls []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	note := "this node keeps its state in the external NATS at " + redactAll(urls) + "\n"
	if err := os.WriteFile(filepath.Join(dir, externalMarker), []byte(note), 0o600); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// checkNotExternal refuses to start the embedded server on the data directory of a node that
// kept its state in an external NATS.
func checkNotExternal(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, externalMarker))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return fmt.Errorf("%w: %s: %s; start it with the same --nats (without --nats the embedded server would serve an empty registry)",
		ErrModeMismatch, dir, strings.TrimSpace(string(b)))
}
