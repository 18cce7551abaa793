// Package config is Flint's one configuration tree: Default() runs out of the box, Validate()
// says what is wrong. Flags and environment variables are read only in the cli package.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config is everything a Flint server needs.
type Config struct {
	// Listen is the Lambda API address (host:port; port 0 picks one).
	Listen string
	// DataDir holds JetStream's files and the unpacked-code cache.
	DataDir string
	// NATSListen, when set, also opens the embedded NATS server to outside clients: they
	// present NATSToken (on every address, loopback too) and may only publish to event
	// sources and read event-source and destination streams. On an address other than
	// loopback it also requires TLS (the API's certificate).
	NATSListen string
	// NATSToken is the token outside NATS clients present; "" makes one when NATSListen is
	// set (DATA/nats-token, 0600, kept across restarts).
	NATSToken string
	// TLSCert and TLSKey are PEM files: when set the API (and function URLs) serve HTTPS only.
	TLSCert, TLSKey string
	// KeysFile holds the access keys SigV4 signatures are checked against ("" means
	// DATA/access-keys.json; `flint keys` manages it). With no keys the API runs in
	// local-development mode (signatures not checked), allowed on a loopback Listen only.
	KeysFile string
	// MasterKeyFile holds the master keys that encrypt environment variables and secrets at rest
	// (made on first start, 0600); "" means DATA/master.key. Keep it apart from the data in
	// production: whoever has both reads every secret.
	MasterKeyFile string
	// MasterKey, when set (FLINT_MASTER_KEY: base64 of 32 bytes, or a comma-separated list whose
	// first is active), is used instead of the key file.
	MasterKey string
	// TLSSelfSigned serves HTTPS with a certificate Flint makes and keeps in DATA/tls.
	TLSSelfSigned bool
	Region        string
	AccountID     string
	// Sandbox names the backend that runs execution environments: "linux" (namespaces, cgroups,
	// seccomp), "process" (plain child processes, no isolation) or "auto" (linux where it can
	// run, else process with a warning).
	Sandbox string
	// FunctionNetwork is what functions reach in the linux sandbox, where each environment has a
	// network namespace of its own either way (its Runtime API and extension ports on its own
	// loopback): "none" (nothing else) or "egress" (the world beyond the host through a veth
	// pair and NAT; never the host itself nor other environments). "host" is accepted as an alias
	// of "egress": no mode puts functions in the host's network namespace.
	FunctionNetwork string
	// FreezeAfter is how long an idle environment waits before its sandbox freezes it (0: never).
	FreezeAfter time.Duration
	// CgroupParent is the cgroup under which each server's linux sandbox makes a parent of its own
	// for its environments (servers on one host share it).
	CgroupParent string
	// KeepAlive is how long an idle environment is kept before it is reaped.
	KeepAlive time.Duration
	// InitTimeout bounds a cold start's INIT phase (Lambda: 10 s).
	InitTimeout time.Duration
	// LogRetention bounds how long function logs are kept.
	LogRetention time.Duration
	// OTLPEndpoint, when set, is an OpenTelemetry collector's OTLP/HTTP base URL
	// (http://HOST:4318): Flint exports each invocation's spans and the FaaS metrics there.
	OTLPEndpoint string
	// MemoryBudgetMB bounds the MemorySize summed over live environments on this node; idle ones
	// are evicted least recently used first to make room, else invokes are throttled. 0 picks
	// three quarters of the machine's memory.
	MemoryBudgetMB int
	// SpareMemoryMB bounds the memory of pre-initialized Python and Node runtimes kept ready for
	// cold starts (sized from demand, up to this; 0: none).
	SpareMemoryMB int
	// Durability of accepted asynchronous events and of the registry: "os" (written to the
	// operating system before the 202: survives a crash or kill -9 of Flint, not a power cut) or
	// "fsync" (flushed to disk before the 202; every JetStream write is fsynced).
	Durability string
	// AsyncRetryDelay is the wait before an async event's first retry; the second waits twice as
	// long (Lambda: about 1 and 2 minutes).
	AsyncRetryDelay time.Duration
	// AsyncThrottleDelay is the first wait before retrying a throttled async event (doubling up
	// to 5 minutes).
	AsyncThrottleDelay time.Duration
	// AsyncAckWait bounds how long a crashed node's in-flight async events, and queue event
	// source mappings' in-flight messages, wait before another delivery.
	AsyncAckWait time.Duration
	// ScheduleMinute, for tests only, is how long a minute of rate() schedules lasts (0: a
	// minute), so that tests of real processes see rate(1 minute) fire every few seconds.
	ScheduleMinute time.Duration
	// StreamRetryDelay is the first wait before a stream event source mapping retries a failed
	// batch (doubling up to 30 s).
	StreamRetryDelay time.Duration
	// AccountConcurrency is the account's concurrent-execution limit (Lambda's default: 1000).
	AccountConcurrency int
	// RuntimeHost is the address environments' Runtime API listeners bind on (process backend).
	RuntimeHost string
	// CodeGrace is how long code that nothing references any more (a deleted function's, a
	// replaced package, a refused request's) is kept before it is removed from the object store
	// and the local cache. It outlasts the longest invocation (15 minutes), so environments of a
	// retired pool still running never lose their /var/task or /opt. 0 removes at once.
	CodeGrace time.Duration
	// RuntimePaths names the interpreter a Python or Node runtime runs on (python3.12 →
	// /usr/local/bin/python3.12), instead of the one Flint finds. It must be of that version.
	RuntimePaths map[string]string
	// StrictRuntimes refuses to create or update functions whose runtime has no interpreter of
	// its own version on this node, instead of running them on the nearest version found.
	StrictRuntimes bool

	// Node names this node in a cluster: unique among the nodes and kept across restarts
	// (JetStream knows its peers by it). Set with ClusterListen and Join, or with NATS; all
	// empty run one standalone node, as before clustering existed (docs/CLUSTER.md).
	Node string
	// ClusterListen is host:port where this node's embedded NATS server takes the other nodes'
	// routes (what they list in Join). Routes authenticate with a secret derived from the
	// master key, so every node must be given the same master key (MasterKeyFile or
	// MasterKey); beyond loopback they also need TLS with TLSCert/TLSKey.
	ClusterListen string
	// Join lists every other node's ClusterListen address. Its length sets the cluster's size
	// at first boot, so list all the others on every node.
	Join []string

	// NATS lists the URLs (nats:// or tls://) of an existing NATS server or cluster with
	// JetStream that keeps Flint's state instead of the embedded server (docs/CLUSTER.md,
	// "Using an existing NATS cluster"). A user and password, or a token, may ride in a URL
	// (nats://user:pass@host:4222, nats://token@host:4222). A node on an external NATS is a
	// cluster node (Node names it; every node needs the shared master key), whether or not
	// other Flint nodes use the same NATS. Exclusive of the embedded server's options
	// (ClusterListen, Join, NATSListen, NATSToken).
	NATS []string
	// NATSCreds is a credentials file (a user JWT and its NKey seed, as `nsc` writes them).
	NATSCreds string
	// NATSNKey is a file holding an NKey seed (SU…) the NATS server knows the public key of.
	NATSNKey string
	// NATSUser and NATSPassword authenticate with a user and password.
	NATSUser, NATSPassword string
	// NATSTLSCA is a PEM file of the CAs that sign the NATS servers' certificates (default:
	// the system's roots). NATSTLSCert and NATSTLSKey are this node's client certificate, for
	// servers that verify clients (mutual TLS). Any of them makes the connection TLS.
	NATSTLSCA, NATSTLSCert, NATSTLSKey string
	// NATSReplicas is how many copies JetStream keeps of every stream, bucket and object store
	// Flint creates on the external NATS; 0 decides: the count Flint's assets already have
	// there, else 1 on a server without a cluster and 3 on a cluster. Every node must agree: a
	// node given a count other than the existing assets' refuses to start.
	NATSReplicas int
	// ClusterAdvertise, when set, is the host:port the other nodes are told to dial for this
	// node's routes instead of ClusterListen (a port forward, a proxy); empty: ClusterListen.
	ClusterAdvertise string
}

// Default returns a configuration that runs on one machine with embedded defaults.
func Default() Config {
	return Config{
		Listen:       "127.0.0.1:9000",
		DataDir:      "flint-data",
		Region:       "us-east-1",
		AccountID:    "000000000000",
		Sandbox:      "auto",
		KeepAlive:    10 * time.Minute,
		InitTimeout:  10 * time.Second,
		LogRetention: 7 * 24 * time.Hour,
		RuntimeHost:  "127.0.0.1",

		AccountConcurrency: 1000,
		FunctionNetwork:    "none",
		CgroupParent:       "flint",
		FreezeAfter:        100 * time.Millisecond,
		Durability:         "os",
		AsyncRetryDelay:    time.Minute,
		AsyncThrottleDelay: time.Second,
		AsyncAckWait:       30 * time.Second,
		StreamRetryDelay:   time.Second,
		CodeGrace:          20 * time.Minute,
		SpareMemoryMB:      1024,
	}
}

var (
	regionPattern  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d$`) })
	accountPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{12}$`) })
)

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("nats-listen %q: %w", c.NATSListen, err))
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data directory must be set"))
	}
	if !regionPattern().MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("region %q is not a region name like us-east-1", c.Region))
	}
	if !accountPattern().MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("account id %q must be 12 digits", c.AccountID))
	}
	if c.KeepAlive <= 0 {
		errs = append(errs, errors.New("keep-alive must be positive"))
	}
	if c.InitTimeout <= 0 {
		errs = append(errs, errors.New("init timeout must be positive"))
	}
	if c.Durability != "os" && c.Durability != "fsync" {
		errs = append(errs, fmt.Errorf("durability %q: want os or fsync", c.Durability))
	}
	if c.AsyncRetryDelay <= 0 || c.AsyncThrottleDelay <= 0 || c.AsyncAckWait < time.Second {
		errs = append(errs, errors.New("async retry and throttle delays must be positive and the ack wait at least 1s"))
	}
	if c.ScheduleMinute < 0 {
		errs = append(errs, errors.New("schedule minute must not be negative"))
	}
	if c.StreamRetryDelay <= 0 {
		errs = append(errs, errors.New("stream retry delay must be positive"))
	}
	if c.CodeGrace < 0 {
		errs = append(errs, errors.New("code grace period must not be negative"))
	}
	if c.MemoryBudgetMB < 0 {
		errs = append(errs, errors.New("memory budget must not be negative"))
	}
	if c.SpareMemoryMB < 0 {
		errs = append(errs, errors.New("spare runtimes' memory must not be negative"))
	}
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("otlp endpoint %q: want an http(s) URL such as http://127.0.0.1:4318", c.OTLPEndpoint))
		}
	}
	if c.AccountConcurrency < 1 {
		errs = append(errs, errors.New("account concurrency must be at least 1"))
	}
	switch c.FunctionNetwork {
	case "none", "egress", "host":
	default:
		errs = append(errs, fmt.Errorf("function network %q: want none or egress (host is an alias of egress)", c.FunctionNetwork))
	}
	if c.Sandbox == "" {
		errs = append(errs, errors.New("sandbox backend must be named"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	if c.TLSCert != "" && c.TLSSelfSigned {
		errs = append(errs, errors.New("tls-self-signed and tls-cert exclude each other"))
	}
	if c.NATSListen != "" && !IsLoopback(c.NATSListen) && !c.TLS() {
		errs = append(errs, fmt.Errorf("nats-listen %s is not a loopback address: it needs TLS (--tls-cert/--tls-key or --tls-self-signed)", c.NATSListen))
	}
	errs = append(errs, c.validateCluster()...)
	errs = append(errs, c.validateExternal()...)
	for rt, p := range c.RuntimePaths {
		if rt == "" || !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("runtime path %s=%s: want RUNTIME=/absolute/path/to/interpreter", rt, p))
		}
	}
	return errors.Join(errs...)
}

var nodePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`) })

func (c Config) validateCluster() []error {
	if c.ClusterListen == "" {
		if c.External() {
			return nil // validateExternal: a node on an external NATS has a name and no routes
		}
		if c.Node != "" || len(c.Join) > 0 || c.ClusterAdvertise != "" {
			return []error{errors.New("node and join (and cluster-advertise) form a cluster together with cluster-listen; give all three or none")}
		}
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(c.ClusterListen); err != nil {
		errs = append(errs, fmt.Errorf("cluster-listen %q: %w", c.ClusterListen, err))
	}
	if c.ClusterAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.ClusterAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("cluster-advertise %q: %w", c.ClusterAdvertise, err))
		}
	}
	if !nodePattern().MatchString(c.Node) {
		errs = append(errs, fmt.Errorf("node %q: a cluster node needs a name of letters, digits, - and _ (at most 63), unique in the cluster and kept across restarts", c.Node))
	}
	if len(c.Join) == 0 {
		// Without routes JetStream refuses to start clustered, and a lone clustered node never
		// elects a meta leader: one node runs standalone.
		errs = append(errs, errors.New("cluster-listen needs join: the other nodes' cluster addresses (a single node runs without cluster flags)"))
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("join %q: %w", j, err))
		} else if j == c.ClusterListen {
			errs = append(errs, fmt.Errorf("join %s is this node's own cluster-listen: list the other nodes only", j))
		}
	}
	if c.MasterKey == "" && c.MasterKeyFile == "" {
		// The default key file is made per data directory, so every node would get its own and
		// no route would authenticate (nor could a node open another's sealed values).
		errs = append(errs, errors.New("a cluster node needs the master key every node shares: --master-key-file FILE or FLINT_MASTER_KEY"))
	}
	if !IsLoopback(c.ClusterListen) && c.TLSCert == "" {
		errs = append(errs, fmt.Errorf("cluster-listen %s is not a loopback address: routes need TLS with a certificate the other nodes trust (--tls-cert/--tls-key; a self-signed one per node cannot be verified)", c.ClusterListen))
	}
	return errs
}

// Clustered reports whether this node is part of a cluster: it joins other nodes
// (ClusterListen) or keeps its state in an external NATS (External), which other nodes may
// share at any time.
func (c Config) Clustered() bool { return c.ClusterListen != "" || c.External() }

// External reports whether Flint's state lives in an existing NATS (NATS is set) instead of
// the embedded server.
func (c Config) External() bool { return len(c.NATS) > 0 }

func (c Config) validateExternal() []error {
	if !c.External() {
		set := []string{}
		for flag, v := range map[string]bool{"nats-creds": c.NATSCreds != "", "nats-nkey": c.NATSNKey != "",
			"nats-user": c.NATSUser != "", "nats-password": c.NATSPassword != "", "nats-tls-ca": c.NATSTLSCA != "",
			"nats-tls-cert": c.NATSTLSCert != "", "nats-tls-key": c.NATSTLSKey != "", "nats-replicas": c.NATSReplicas != 0} {
			if v {
				set = append(set, flag)
			}
		}
		if len(set) > 0 {
			slices.Sort(set)
			return []error{fmt.Errorf("%s: options of an external NATS, which --nats names", strings.Join(set, ", "))}
		}
		return nil
	}
	var errs []error
	if c.ClusterListen != "" || len(c.Join) > 0 {
		errs = append(errs, errors.New("nats and cluster-listen/join exclude each other: nodes on an external NATS cluster are clustered through it"))
	}
	if c.NATSListen != "" || c.NATSToken != "" {
		errs = append(errs, errors.New("nats-listen and nats-token open the embedded NATS server, which does not run with --nats: outside clients connect to the external NATS (and a token for it goes in the URL, nats://TOKEN@host:4222)"))
	}
	userinfo := false
	for _, u := range c.NATS {
		p, err := url.Parse(u)
		switch {
		case err != nil || p.Host == "":
			errs = append(errs, fmt.Errorf("nats %q: want a URL such as nats://host:4222", redactURL(u)))
		case p.Scheme != "nats" && p.Scheme != "tls":
			errs = append(errs, fmt.Errorf("nats %q: the scheme must be nats:// or tls://", redactURL(u)))
		case p.User != nil:
			userinfo = true
		}
	}
	auths := 0
	for _, v := range []bool{userinfo, c.NATSCreds != "", c.NATSNKey != "", c.NATSUser != "" || c.NATSPassword != ""} {
		if v {
			auths++
		}
	}
	if auths > 1 {
		errs = append(errs, errors.New("nats credentials: give one of a URL's user info, --nats-creds, --nats-nkey or --nats-user/--nats-password"))
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		errs = append(errs, errors.New("nats-password needs nats-user"))
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, errors.New("nats-tls-cert and nats-tls-key go together"))
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		errs = append(errs, fmt.Errorf("nats-replicas %d: want 1 to 5 (JetStream's limit), or 0 to decide", c.NATSReplicas))
	}
	if !nodePattern().MatchString(c.Node) {
		errs = append(errs, fmt.Errorf("node %q: a node on an external NATS needs a name of letters, digits, - and _ (at most 63), unique among the Flint nodes sharing it", c.Node))
	}
	if c.MasterKey == "" && c.MasterKeyFile == "" {
		// The default key file lives in the data directory, while what it seals lives in NATS:
		// another node (or this one on a new data directory) could never open it.
		errs = append(errs, errors.New("a node on an external NATS needs the master key every node shares: --master-key-file FILE or FLINT_MASTER_KEY"))
	}
	return errs
}

// redactURL is u without its user info (a user's password or a token), for messages and logs.
func redactURL(u string) string {
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

// Replicas is how many copies the embedded JetStream keeps of each of Flint's streams, KV
// buckets and the object store (an external NATS: NATSReplicas): 3 in a cluster of 3 or more
// nodes (1 + len(Join)), else 1. Every node derives
// the same number from its own configuration, as it must: assets with mixed replica counts
// confuse JetStream's leader elections, and a node opening a bucket with another count would
// rescale it. 2 nodes keep 1 copy: with 2 peers Raft needs both for quorum anyway, so a second
// copy would add no availability.
func (c Config) Replicas() int {
	if c.ClusterListen != "" && 1+len(c.Join) >= 3 {
		return 3
	}
	return 1
}

// TLS reports whether the API serves HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" || c.TLSSelfSigned }

// IsLoopback reports whether a host:port listen address only accepts connections from this
// machine (a loopback IP or "localhost"; an empty host means every interface).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
