// Package store is Flint's registry: records in JetStream KV buckets, one typed repository per
// kind (Functions, Versions, Aliases, …), and code packages in a JetStream object store, on an
// embedded NATS server that joins the other nodes' in a cluster (cluster.go), or on an existing
// NATS server or cluster (external.go). It owns the NATS connection; it knows nothing of HTTP,
// sandboxes or invocations.
package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/apigw"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
)

// Sentinels callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrConflict = errors.New("store: revision conflict")
)

const (
	functionsBucket     = "flint_functions"
	versionsBucket      = "flint_versions"
	aliasesBucket       = "flint_aliases"
	provisionedBucket   = "flint_provisioned"
	eventInvokeBucket   = "flint_event_invoke"
	urlsBucket          = "flint_urls"
	schedulesBucket     = "flint_schedules"
	layersBucket        = "flint_layers"
	layerSeqBucket      = "flint_layer_seq"
	scheduleStateBucket = "flint_schedule_state"
	codeBucket          = "flint_code"
	esmBucket           = "flint_event_source_mappings"
	checkpointsBucket   = "flint_esm_checkpoints"
	policiesBucket      = "flint_policies"
	secretsBucket       = "flint_secrets"
	nodesBucket         = "flint_nodes"
	sqsQueuesBucket     = "flint_sqs_queues"
	snsBucket           = "flint_sns"
	apisBucket          = "flint_apis"
	signingBucket       = "flint_code_signing_configs"
)

// Options configure Open.
type Options struct {
	Dir    string // JetStream's store directory
	Listen string // host:port to open the embedded server to clients; "" keeps it in-process only
	Log    *slog.Logger
	// SyncAlways fsyncs every JetStream write before acknowledging it.
	SyncAlways bool
	// TLS, when set, is required of outside clients (Listen).
	TLS *tls.Config
	// Token is what outside clients (Listen) present to connect; required with Listen. They
	// get only event-source publishes and reads of event-source and destination streams
	// (clients.go); Flint's own connections authenticate with a secret of their own.
	Token string
	// Keyring encrypts what must not be stored in the clear (functions' environment variables).
	Keyring *crypt.Keyring
	// Cluster, when set, joins the other nodes' embedded servers (cluster.go); nil runs
	// standalone.
	Cluster *ClusterOptions
	// External, when set, keeps everything in an existing NATS instead of the embedded server
	// (external.go); Dir then holds no JetStream state.
	External *ExternalOptions
}

// Store is the registry on JetStream.
type Store struct {
	ns        *server.Server
	nc        *nats.Conn
	proxyNC   *nats.Conn // the outside clients' JetStream proxy (clients.go)
	js        jetstream.JetStream
	fns       bucket[lambda.Function]
	versions  bucket[lambda.Function]
	aliases   bucket[lambda.Alias]
	prov      bucket[lambda.ProvisionedConcurrency]
	eic       bucket[lambda.EventInvokeConfig]
	urls      bucket[lambda.FunctionURL]
	scheds    bucket[lambda.Schedule]
	layers    bucket[lambda.StoredLayer]
	layerSeq  bucket[int]
	schedSt   bucket[lambda.ScheduleState]
	esms      bucket[lambda.EventSourceMapping]
	checkpts  Records
	policies  bucket[lambda.StoredPolicy]
	secrets   Records
	nodes     Records
	sqsQueues Records
	sns       Records
	apis      bucket[apigw.API]
	signing   bucket[lambda.CodeSigningConfig]
	code      jetstream.ObjectStore
	log       *slog.Logger
	keyring   *crypt.Keyring
	replicas  int
	clustered bool
	outside   bool // outside NATS clients are let in (Options.Listen)
	// quorum follows a cluster node's quorum (nil standalone): writes are refused while it is
	// lost (quorum.go).
	quorum *quorumWatch
}

// Open starts the embedded NATS server with JetStream in opts.Dir, or connects to an external
// NATS (opts.External), and opens the buckets.
func Open(ctx context.Context, opts Options) (*Store, error) {
	sopts := &server.Options{
		ServerName: "flint",
		JetStream:  true,
		StoreDir:   filepath.Join(opts.Dir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: opts.Listen == "",
		// The registry and async queue live here; keep JetStream within sane bounds of one machine.
		JetStreamMaxMemory: 256 << 20,
		SyncAlways:         opts.SyncAlways,
		MaxPayload:         8 << 20, // a forwarded invocation carries up to 6 MB each way (invoke/route.go)
	}
	if opts.TLS != nil {
		sopts.TLSConfig, sopts.TLS, sopts.TLSTimeout = opts.TLS, true, 5
	}
	if opts.Listen != "" && opts.Token == "" {
		return nil, errors.New("store: outside NATS clients (Listen) need a token")
	}
	if opts.Keyring == nil {
		return nil, errors.New("store: a keyring is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.External != nil {
		return openExternal(ctx, opts)
	}
	if err := checkNotExternal(opts.Dir); err != nil {
		return nil, err
	}
	if err := checkStoreDir(sopts.StoreDir, opts.Cluster != nil); err != nil {
		return nil, err
	}
	if opts.Cluster != nil {
		if err := checkNodeName(sopts.StoreDir, opts.Cluster.Node); err != nil {
			return nil, err
		}
	}
	// Every connection authenticates, Flint's own in-process ones included. Only the client
	// listener and, in a cluster, the routes are ever opened (no gateways, leaf nodes,
	// websocket or MQTT); routes authenticate apart, with routeAuth.
	auth, err := newNATSAuth(opts.Token)
	if err != nil {
		return nil, err
	}
	sopts.CustomClientAuthentication = auth
	if opts.Listen != "" {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		sopts.Host, sopts.Port = host, p
		if p == 0 {
			sopts.Port = server.RANDOM_PORT
		}
	}
	replicas := 1
	if opts.Cluster != nil {
		if err := configureCluster(sopts, opts.Cluster, opts.Keyring.DerivedKeys(routePurpose)); err != nil {
			return nil, err
		}
		replicas = opts.Cluster.Replicas
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	debug := opts.Log.Enabled(context.Background(), slog.LevelDebug)
	ns.SetLoggerV2(natsLog{opts.Log.With("nats", true)}, debug, false, false)
	go ns.Start() // the server owns this goroutine; Shutdown stops it
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start embedded nats: not ready within 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("flint"), nats.MaxReconnects(-1), nats.Token(auth.internal))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	s := &Store{ns: ns, nc: nc, log: opts.Log, keyring: opts.Keyring, replicas: replicas, clustered: opts.Cluster != nil, outside: opts.Listen != ""}
	if opts.Cluster != nil {
		// A cluster of 2 elects with both; R3 assets need 3 nodes known to the meta leader.
		if err := waitMeta(ctx, ns, max(2, replicas), opts.Log); err != nil {
			s.Close()
			return nil, err
		}
		s.quorum = newQuorumWatch(ns, opts.Log)
		s.quorum.start()
	}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if opts.Listen != "" {
		if err := s.openClients(auth); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	inner, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	js := &replicated{JetStream: inner, replicas: s.replicas, log: s.log, s: s}
	s.js = js
	var buckets []string
	for _, b := range []struct {
		name, desc string
		open       func(jetstream.KeyValue)
	}{
		{functionsBucket, "Flint functions ($LATEST configuration)", func(kv jetstream.KeyValue) {
			s.fns = bucket[lambda.Function]{kv: kv, what: "function", log: s.log,
				seal: s.sealEnv(functionsBucket), open: s.openEnv(functionsBucket), index: &keyIndex{}}
		}},
		{versionsBucket, "Flint published versions (NAME.N)", func(kv jetstream.KeyValue) {
			s.versions = bucket[lambda.Function]{kv: kv, what: "version", log: s.log,
				seal: s.sealEnv(versionsBucket), open: s.openEnv(versionsBucket)}
		}},
		{aliasesBucket, "Flint aliases (NAME.ALIAS)", func(kv jetstream.KeyValue) {
			s.aliases = bucket[lambda.Alias]{kv: kv, what: "alias", log: s.log}
		}},
		{eventInvokeBucket, "Flint asynchronous invocation configs (NAME.QUALIFIER)", func(kv jetstream.KeyValue) {
			s.eic = bucket[lambda.EventInvokeConfig]{kv: kv, what: "event invoke config", log: s.log}
		}},
		{urlsBucket, "Flint function URLs (by URL id)", func(kv jetstream.KeyValue) {
			s.urls = bucket[lambda.FunctionURL]{kv: kv, what: "function url", log: s.log}
		}},
		{schedulesBucket, "Flint schedules (GROUP.NAME)", func(kv jetstream.KeyValue) {
			s.scheds = bucket[lambda.Schedule]{kv: kv, what: "schedule", log: s.log}
		}},
		{scheduleStateBucket, "Flint schedules' last firing (GROUP.NAME)", func(kv jetstream.KeyValue) {
			s.schedSt = bucket[lambda.ScheduleState]{kv: kv, what: "schedule state", log: s.log}
		}},
		{layersBucket, "Flint layer versions (NAME.N)", func(kv jetstream.KeyValue) {
			s.layers = bucket[lambda.StoredLayer]{kv: kv, what: "layer version", log: s.log}
		}},
		{layerSeqBucket, "Flint layers' last version numbers", func(kv jetstream.KeyValue) {
			s.layerSeq = bucket[int]{kv: kv, what: "layer", log: s.log}
		}},
		{esmBucket, "Flint event source mappings (by UUID)", func(kv jetstream.KeyValue) {
			s.esms = bucket[lambda.EventSourceMapping]{kv: kv, what: "event source mapping", log: s.log}
		}},
		{policiesBucket, "Flint resource-based policies (NAME.QUALIFIER, NAME.= unqualified)", func(kv jetstream.KeyValue) {
			s.policies = bucket[lambda.StoredPolicy]{kv: kv, what: "policy", log: s.log}
		}},
		{checkpointsBucket, "Flint stream event source mappings' checkpoints (by UUID)", func(kv jetstream.KeyValue) {
			s.checkpts = Records{bucket[json.RawMessage]{kv: kv, what: "checkpoint", log: s.log}}
		}},
		{secretsBucket, "Flint secrets (Secrets Manager API), encrypted", func(kv jetstream.KeyValue) {
			s.secrets = Records{bucket[json.RawMessage]{kv: kv, what: "secret", log: s.log}}
		}},
		{nodesBucket, "Flint nodes' heartbeats (by node name)", func(kv jetstream.KeyValue) {
			s.nodes = Records{bucket[json.RawMessage]{kv: kv, what: "node", log: s.log}}
		}},
		{sqsQueuesBucket, "Flint SQS API queues' attributes and tags (by queue name)", func(kv jetstream.KeyValue) {
			s.sqsQueues = Records{bucket[json.RawMessage]{kv: kv, what: "queue", log: s.log}}
		}},
		{snsBucket, "Flint SNS API topics and subscriptions", func(kv jetstream.KeyValue) {
			s.sns = Records{bucket[json.RawMessage]{kv: kv, what: "sns record", log: s.log}}
		}},
		{apisBucket, "Flint API Gateway APIs (by name)", func(kv jetstream.KeyValue) {
			s.apis = bucket[apigw.API]{kv: kv, what: "api", log: s.log}
		}},
		{provisionedBucket, "Flint provisioned concurrency (NAME.QUALIFIER)", func(kv jetstream.KeyValue) {
			s.prov = bucket[lambda.ProvisionedConcurrency]{kv: kv, what: "provisioned concurrency config", log: s.log}
		}},
		{signingBucket, "Flint code signing configs (by id, csc-…)", func(kv jetstream.KeyValue) {
			s.signing = bucket[lambda.CodeSigningConfig]{kv: kv, what: "code signing config", log: s.log}
		}},
	} {
		buckets = append(buckets, b.name)
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, History: 1, Storage: jetstream.FileStorage})
		if err != nil {
			return fmt.Errorf("open %s bucket: %w", b.name, err)
		}
		b.open(s.guardKV(kv))
	}
	code, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: codeBucket, Description: "Flint code packages by SHA-256", Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("open code bucket: %w", err)
	}
	s.code = s.guardObjects(code)
	if s.clustered && s.ns != nil {
		// An embedded cluster node reads from its own copies; a node on an external NATS
		// holds none (its reads and watches go to the servers, which answer from current ones).
		streams := []string{"OBJ_" + codeBucket}
		for _, b := range buckets {
			streams = append(streams, "KV_"+b)
		}
		if err := waitCurrent(ctx, s.ns, inner, streams, s.log); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoints holds the stream event source mappings' positions.
func (s *Store) Checkpoints() Records { return s.checkpts }

// Nodes holds the nodes' heartbeats (cluster.Membership owns their shape).
func (s *Store) Nodes() Records { return s.nodes }

// SQSQueues holds the SQS API's queues: attributes and tags (internal/sqs owns the documents;
// the messages are in JetStream streams).
func (s *Store) SQSQueues() Records { return s.sqsQueues }

// SNS holds the SNS API's topics and subscriptions (internal/sns owns the documents).
func (s *Store) SNS() Records { return s.sns }

// Secrets holds the Secrets Manager API's secrets (encrypted by their owner).
func (s *Store) Secrets() Records { return s.secrets }

// JetStream is the shared JetStream context for other parts (logs, async queue). Every stream,
// bucket and object store created or updated through it gets the cluster's replica count and is
// safe to open from every node at once (replicated).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// ClientURL is where outside NATS clients connect ("" when not listening).
func (s *Store) ClientURL() string {
	// A cluster node listens on loopback even without outside clients (routes need a client
	// listener): that address is no use to anyone.
	if s.ns == nil {
		return "" // an external NATS: its clients connect to it, with credentials of their own
	}
	if addr := s.ns.Addr(); addr != nil && s.outside {
		return s.ns.ClientURL()
	}
	return ""
}

// Close closes the connection and shuts the embedded server (if any) down.
func (s *Store) Close() {
	if s.proxyNC != nil {
		s.proxyNC.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.quorum != nil {
		s.quorum.close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// Crash stops the embedded NATS server at once, as if this node's process had died: the
// other nodes lose its routes and its copies, and nothing of Flint's shutdown runs first.
// For tests of failover in one process; Close is the way to stop.
func (s *Store) Crash() {
	if s.ns != nil {
		s.ns.Shutdown()
	}
}
