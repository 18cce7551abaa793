package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions join this node's embedded server to other nodes' (flint serve --node
// --cluster-listen --join). docs/notes/nats-cluster-findings.md explains each choice.
type ClusterOptions struct {
	Node   string   // the server's name: unique and stable (the meta group's peer id is a hash of it)
	Listen string   // host:port of this node's routes
	Join   []string // every other node's Listen
	// Advertise, when set, is the host:port the other nodes are told to dial to reach this node
	// (its routes' INFO), instead of Listen: for a node reached through an address of another
	// machine, a port forward or a proxy. The nodes dial it only for routes they learn of by
	// gossip; the routes they are given (Join) are dialled as given.
	Advertise string
	Replicas  int // copies of every stream, bucket and object store; the same on every node
	// TLS, when set, protects the routes both ways (it serves accepted routes and dials the
	// others, verifying their certificates).
	TLS *tls.Config
}

// RouteTLS is the routes' TLS configuration from a PEM certificate and key (the API's
// --tls-cert/--tls-key): each node presents the certificate both ways and verifies the other
// nodes' against the system roots and every certificate in certFile (so one certificate shared
// by all nodes, or node certificates whose file carries their CA, verify without more
// configuration). A route's certificate must name the host the other nodes dial (--join).
func RouteTLS(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("route tls certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("route tls certificate: %w", err)
		}
		pool.AddCert(c)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool, // a node dialing another checks its chain and name as usual
		// A node accepting a route checks the dialer's chain here, whatever the certificate's
		// extended key usage: server certificates (Let's Encrypt's among them) often lack
		// client authentication. The route secret is checked after the handshake either way.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		},
		MinVersion: tls.VersionTLS12,
	}, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("route tls: no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("route tls: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("route tls: %w", err)
	}
	return nil
}

// routeUser is the user name routes present; the password is derived from the master keys.
const routeUser = "flint-route"

// routePurpose names the master-key-derived secret routes authenticate with.
const routePurpose = "nats cluster routes"

// routeAuth admits a route that presents the secret derived from any of this node's master
// keys: a node whose active key is new or old during a rotation still gets in, a node with
// other keys never does. A route is fully trusted (every account's messages, the JetStream API
// and $SYS cross it), so this is the cluster's barrier; Flint's client auth is never consulted
// for routes (nats-server's checkAuthentication sends ROUTER connections to
// isRouterAuthorized).
type routeAuth struct{ passwords []string }

var _ server.Authentication = (*routeAuth)(nil)

func (a *routeAuth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.ROUTER {
		return false
	}
	o := c.GetOpts()
	if o.Username != routeUser {
		return false
	}
	ok := false
	for _, p := range a.passwords {
		ok = equal(o.Password, p) || ok // constant time: try every key
	}
	return ok
}

// configureCluster sets the embedded server's cluster options.
func configureCluster(sopts *server.Options, c *ClusterOptions, secrets [][]byte) error {
	if c.Node == "" || len(c.Join) == 0 {
		return errors.New("store: a cluster node needs a name and the other nodes' addresses")
	}
	if c.Replicas < 1 {
		return errors.New("store: a cluster needs a replica count")
	}
	if len(secrets) == 0 {
		return errors.New("store: a cluster needs a master key to derive the route secret from")
	}
	host, port, err := splitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("cluster listen address: %w", err)
	}
	auth := &routeAuth{}
	for _, s := range secrets {
		auth.passwords = append(auth.passwords, hex.EncodeToString(s))
	}
	active := auth.passwords[0]
	sopts.ServerName = c.Node
	sopts.Cluster = server.ClusterOpts{
		Name: "flint", Host: host, Port: port,
		// Username/Password are what this node presents on routes it learns by gossip (and make
		// its INFO say auth is required); CustomRouterAuthentication decides who gets in.
		Username: routeUser, Password: active,
		// The client listener below is loopback only: do not gossip it to other nodes' clients.
		NoAdvertise: true,
		Advertise:   c.Advertise,
	}
	if c.TLS != nil {
		sopts.Cluster.TLSConfig, sopts.Cluster.TLSTimeout = c.TLS, 5
	}
	sopts.CustomRouterAuthentication = auth
	sopts.Routes = nil
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join %q: %w", j, err)
		}
		sopts.Routes = append(sopts.Routes, &url.URL{Scheme: "nats-route", Host: j, User: url.UserPassword(routeUser, active)})
	}
	// Routing starts only once the client accept loop runs (nats-server waits for
	// clientListenReady), so a cluster node cannot use DontListen: without outside clients
	// the listener is on loopback, where Flint's client auth admits only its own in-process
	// connections.
	if sopts.DontListen {
		sopts.DontListen = false
		sopts.Host, sopts.Port = "127.0.0.1", server.RANDOM_PORT
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	return host, p, nil
}

// checkStoreDir refuses to start a data directory in the other mode than it was used in.
// JetStream in cluster mode does not adopt a standalone server's streams: they are invisible
// at once and deleted as orphans about 30 s later (nats-server issue 5467). JetStream keeps
// its files under StoreDir/jetstream; a cluster node's meta group lives in $SYS/_js_/_meta_.
func checkStoreDir(storeDir string, clustered bool) error {
	js := filepath.Join(storeDir, "jetstream")
	streams, err := os.ReadDir(filepath.Join(js, "$G", "streams"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the data directory: %w", err)
	}
	_, err = os.Stat(filepath.Join(js, "$SYS", "_js_", "_meta_"))
	meta := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the data directory: %w", err)
	}
	switch {
	case clustered && !meta && len(streams) > 0:
		return fmt.Errorf("%w: %s holds a standalone Flint's state (%d streams) and JetStream would delete it on joining a cluster; "+
			"start this node on a new, empty data directory (moving a standalone node's functions into a cluster is not supported yet: create them again through the API; docs/CLUSTER.md)",
			ErrModeMismatch, filepath.Dir(storeDir), len(streams))
	case !clustered && meta:
		return fmt.Errorf("%w: %s belongs to a cluster node; start it with its --node, --cluster-listen and --join",
			ErrModeMismatch, filepath.Dir(storeDir))
	}
	return nil
}

// checkNodeName keeps a cluster node's data directory to one node name: JetStream knows its
// peers by a hash of the name, so a renamed node would be a stranger holding another's copies.
// The name is written on first start.
func checkNodeName(storeDir, node string) error {
	path := filepath.Join(storeDir, "flint-node")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(storeDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		if err := os.WriteFile(path, []byte(node+"\n"), 0o600); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if was := strings.TrimSpace(string(b)); was != node {
		return fmt.Errorf("%w: %s belongs to cluster node %s, not %s: a node keeps its name (--node) for as long as its data",
			ErrModeMismatch, filepath.Dir(storeDir), was, node)
	}
	return nil
}

// ErrModeMismatch: the data directory was used standalone and is started as a cluster node, or
// the other way round.
var ErrModeMismatch = errors.New("data directory used in another mode")

// waitMeta waits until this node's JetStream has a meta leader and knows at least want peers:
// before that a JetStream API request may get no answer at all. It logs what it waits for every
// so often (a node started before the others waits for them).
func waitMeta(ctx context.Context, ns *server.Server, want int, log *slog.Logger) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	start, said := time.Now(), time.Now()
	for {
		why := metaReady(ns, want)
		if why == "" {
			log.Info("joined the cluster", "node", ns.Name(), "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Since(said) >= 10*time.Second {
			said = time.Now()
			log.Warn("waiting for the cluster: start the other nodes; check that each lists the others in --join, reaches their cluster addresses and has the same master key",
				"node", ns.Name(), "waiting", time.Since(start).Round(time.Second), "state", why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster (%s): %w", why, ctx.Err())
		case <-t.C:
		}
	}
}

// waitCurrent waits until this node's copy of each stream holds everything its leader held
// when asked, so a node restarted after others wrote does not fill its caches from its own
// stale copy (its watches may read from it). Streams this node holds no copy of are skipped.
// Neither the leader's view of its followers (right after a restart it still counts the node
// current from before) nor this node's own Raft state (it has yet to hear of what it missed)
// can tell, so this compares the leader's last sequence with the local copy's. A stream info
// answer that leaves this node out of the replicas came from this node itself (while it knows
// no leader it answers for the stream): it is asked again.
func waitCurrent(ctx context.Context, ns *server.Server, js jetstream.JetStream, streams []string, log *slog.Logger) error {
	me := ns.Name()
	local, err := localStreams(ns)
	if err != nil {
		return err
	}
	start, said := time.Now(), time.Now()
	want := map[string]uint64{}
	for _, name := range streams {
		for {
			st, err := retry(ctx, log, "stream info "+name, nil, func(ctx context.Context) (jetstream.Stream, error) {
				return js.Stream(ctx, name)
			})
			// Not found: answered by a node yet to learn of a stream another node just created.
			if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			var info *jetstream.StreamInfo
			var c *jetstream.ClusterInfo
			if err == nil {
				info = st.CachedInfo()
				c = info.Cluster
			}
			if c != nil && c.Leader != "" && (c.Leader == me || slices.ContainsFunc(c.Replicas, func(p *jetstream.PeerInfo) bool { return p.Name == me })) {
				want[name] = info.State.LastSeq
				break
			}
			if _, ok := local[name]; !ok && c != nil && c.Leader != "" {
				break // no copy here
			}
			if time.Since(said) >= 10*time.Second {
				said = time.Now()
				log.Warn("waiting for the leader of a stream to answer", "stream", name, "waiting", time.Since(start).Round(time.Second))
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("stream %s: no answer from its leader: %w", name, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	for {
		why, err := behind(ns, want)
		if err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		if time.Since(said) >= 10*time.Second {
			said = time.Now()
			log.Warn("waiting for this node's copies of the registry to catch up", "state", why, "waiting", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("catching up (%s): %w", why, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// localStreams are the last sequences of the stream copies this node holds.
func localStreams(ns *server.Server) (map[string]uint64, error) {
	jsz, err := ns.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return nil, fmt.Errorf("jetstream state: %w", err)
	}
	have := map[string]uint64{}
	for _, a := range jsz.AccountDetails {
		for _, sd := range a.Streams {
			have[sd.Name] = sd.State.LastSeq
		}
	}
	return have, nil
}

// behind says which local stream copy has yet to reach its wanted last sequence ("" when none).
func behind(ns *server.Server, want map[string]uint64) (string, error) {
	have, err := localStreams(ns)
	if err != nil {
		return "", err
	}
	for name, seq := range want {
		if got, ok := have[name]; !ok || got < seq {
			return fmt.Sprintf("stream %s here at %d of %d", name, got, seq), nil
		}
		if !ns.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, name) {
			return fmt.Sprintf("stream %s applying", name), nil
		}
	}
	return "", nil
}

// metaReady says what is missing for ns's meta layer to be usable ("" when nothing is).
func metaReady(ns *server.Server, want int) string {
	if h := ns.Healthz(&server.HealthzOptions{JSMetaOnly: true}); h.StatusCode != 200 {
		return h.Error
	}
	jsz, err := ns.Jsz(nil)
	if err != nil {
		return err.Error()
	}
	if jsz.Meta == nil || jsz.Meta.Leader == "" {
		return "no meta leader"
	}
	if jsz.Meta.Size < want {
		return fmt.Sprintf("%d of %d nodes known", jsz.Meta.Size, want)
	}
	return ""
}

// replicated is Flint's JetStream context: every stream, KV bucket and object store any part
// of Flint creates or updates through it gets the configured replica count, and
// create-or-update is done create first. Both matter in a cluster: a node opening an asset
// with another replica count rescales it (nats.go turns 0 into 1), and CreateOrUpdate* of a
// new asset from several nodes at once (every node starting) can go unanswered on all of them
// (UpdateStream → not found → CreateStream races the others' creates). Each request also gets
// a deadline of its own and is retried while the cluster settles (a request sent while a
// leader is being elected is dropped without an answer).
type replicated struct {
	jetstream.JetStream
	replicas int
	log      *slog.Logger
	// s refuses publishes (the async queue's enqueues among them) while a cluster node has lost
	// the quorum (quorum.go).
	s *Store
	// unanswered counts requests that got no answer within attemptTimeout (and were retried):
	// none should, once the meta leader exists and assets are opened create first.
	unanswered atomic.Int64
}

// attemptTimeout bounds one JetStream API request; retryBudget (or the caller's context, if
// sooner) bounds the retries, so a cluster without quorum fails a request instead of holding it.
const (
	attemptTimeout = 10 * time.Second
	retryBudget    = time.Minute
)

// createFirst opens an asset as every node may at once: create it, and update it only if it
// exists (concurrent create-or-update of a new asset from several nodes goes unanswered).
func createFirst[C, T any](create, update func(context.Context, C) (T, error), cfg C, exists error) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		v, err := create(ctx, cfg)
		if errors.Is(err, exists) {
			v, err = update(ctx, cfg)
		}
		return v, err
	}
}

// retry runs op until it succeeds, fails for good, or ctx or the budget ends; unanswered (if not
// nil) counts the attempts that got no answer in time.
func retry[T any](ctx context.Context, log *slog.Logger, what string, unanswered *atomic.Int64, op func(context.Context) (T, error)) (T, error) {
	give := time.Now().Add(retryBudget)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		v, err := op(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) || time.Now().After(give) {
			return v, err
		}
		if unanswered != nil && errors.Is(err, context.DeadlineExceeded) {
			unanswered.Add(1)
		}
		log.Debug("jetstream request retried", "what", what, "err", err)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
	}
}

// transient reports whether a JetStream API error is the cluster settling: no answer, no
// leader yet, a peer not yet placeable.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10004, // cluster incomplete
			10005, // no suitable peers for placement: the meta leader has yet to hear from one
			10006, // cluster not active
			10008, // JetStream temporarily unavailable
			10009: // not the leader
			return true
		}
	}
	return false
}

func (r *replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "create stream "+cfg.Name, &r.unanswered, func(ctx context.Context) (jetstream.Stream, error) {
		return r.JetStream.CreateStream(ctx, cfg)
	})
}

func (r *replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "update stream "+cfg.Name, &r.unanswered, func(ctx context.Context) (jetstream.Stream, error) {
		return r.JetStream.UpdateStream(ctx, cfg)
	})
}

func (r *replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas
	// CreateStream of an identical existing stream is no error.
	return retry(ctx, r.log, "open stream "+cfg.Name, &r.unanswered, createFirst(r.JetStream.CreateStream, r.JetStream.UpdateStream, cfg, jetstream.ErrStreamNameAlreadyInUse))
}

func (r *replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "create bucket "+cfg.Bucket, &r.unanswered, func(ctx context.Context) (jetstream.KeyValue, error) {
		return r.JetStream.CreateKeyValue(ctx, cfg)
	})
}

func (r *replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "update bucket "+cfg.Bucket, &r.unanswered, func(ctx context.Context) (jetstream.KeyValue, error) {
		return r.JetStream.UpdateKeyValue(ctx, cfg)
	})
}

func (r *replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "open bucket "+cfg.Bucket, &r.unanswered, createFirst(r.JetStream.CreateKeyValue, r.JetStream.UpdateKeyValue, cfg, jetstream.ErrBucketExists))
}

func (r *replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "create object store "+cfg.Bucket, &r.unanswered, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.CreateObjectStore(ctx, cfg)
	})
}

func (r *replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "update object store "+cfg.Bucket, &r.unanswered, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.UpdateObjectStore(ctx, cfg)
	})
}

func (r *replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas
	return retry(ctx, r.log, "open object store "+cfg.Bucket, &r.unanswered, createFirst(r.JetStream.CreateObjectStore, r.JetStream.UpdateObjectStore, cfg, jetstream.ErrBucketExists))
}

// PublishMsg refuses at once while this node has lost the quorum: the stream can commit
// nothing (an async invoke then gets the same ServiceException as a change).
func (r *replicated) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := r.s.refuse(); err != nil {
		return nil, err
	}
	ack, err := r.JetStream.PublishMsg(ctx, m, opts...)
	return ack, r.s.failed(err)
}

// PublishMsgAsync refuses at once while this node has lost the quorum, as PublishMsg does; a
// publish whose ack never comes is explained by Failed.
func (r *replicated) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := r.s.refuse(); err != nil {
		return nil, err
	}
	return r.JetStream.PublishMsgAsync(m, opts...)
}

// Failed is the error for a write that got err instead of its ack: the quorum error if the node
// has lost its quorum meanwhile.
func (r *replicated) Failed(err error) error { return r.s.failed(err) }

func (r *replicated) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return r.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data}, opts...)
}
