// Package store is Flint's registry: function records in a JetStream KV bucket and code packages
// in a JetStream object store, on an embedded NATS server (or, later, an external one). It owns the
// NATS connection; it knows nothing of HTTP, sandboxes or invocations.
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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
}

// Store is the registry on JetStream.
type Store struct {
	ns       *server.Server
	nc       *nats.Conn
	proxyNC  *nats.Conn // the outside clients' JetStream proxy (clients.go)
	js       jetstream.JetStream
	fns      bucket[lambda.Function]
	versions bucket[lambda.Function]
	aliases  bucket[lambda.Alias]
	prov     bucket[lambda.ProvisionedConcurrency]
	eic      bucket[lambda.EventInvokeConfig]
	urls     bucket[lambda.FunctionURL]
	scheds   bucket[lambda.Schedule]
	layers   bucket[lambda.StoredLayer]
	layerSeq bucket[int]
	schedSt  bucket[lambda.ScheduleState]
	esms     bucket[lambda.EventSourceMapping]
	checkpts Records
	policies bucket[lambda.StoredPolicy]
	secrets  Records
	code     jetstream.ObjectStore
	log      *slog.Logger
	keyring  *crypt.Keyring
}

// Open starts the embedded NATS server with JetStream in opts.Dir and opens the buckets.
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
	// Every connection authenticates, Flint's own in-process ones included; only the client
	// listener is ever opened (no cluster routes, gateways, leaf nodes, websocket or MQTT: a
	// cluster mode must authenticate its routes before it opens them).
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
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
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
	s := &Store{ns: ns, nc: nc, log: opts.Log, keyring: opts.Keyring}
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
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	for _, b := range []struct {
		name, desc string
		open       func(jetstream.KeyValue)
	}{
		{functionsBucket, "Flint functions ($LATEST configuration)", func(kv jetstream.KeyValue) {
			s.fns = bucket[lambda.Function]{kv: kv, what: "function", log: s.log,
				seal: s.sealEnv(functionsBucket), open: s.openEnv(functionsBucket)}
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
		{provisionedBucket, "Flint provisioned concurrency (NAME.QUALIFIER)", func(kv jetstream.KeyValue) {
			s.prov = bucket[lambda.ProvisionedConcurrency]{kv: kv, what: "provisioned concurrency config", log: s.log}
		}},
	} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, History: 1, Storage: jetstream.FileStorage})
		if err != nil {
			return fmt.Errorf("open %s bucket: %w", b.name, err)
		}
		b.open(kv)
	}
	if s.code, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: codeBucket, Description: "Flint code packages by SHA-256", Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("open code bucket: %w", err)
	}
	return nil
}

// Checkpoints holds the stream event source mappings' positions.
func (s *Store) Checkpoints() Records { return s.checkpts }

// Secrets holds the Secrets Manager API's secrets (encrypted by their owner).
func (s *Store) Secrets() Records { return s.secrets }

// JetStream is the shared JetStream context for other parts (logs, async queue).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// ClientURL is where outside NATS clients connect ("" when not listening).
func (s *Store) ClientURL() string {
	if addr := s.ns.Addr(); addr != nil {
		return s.ns.ClientURL()
	}
	return ""
}

// Close drains the connection and shuts the embedded server down.
func (s *Store) Close() {
	if s.proxyNC != nil {
		s.proxyNC.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// Function is a stored function with the KV revision that guards updates.
type Function struct {
	*lambda.Function
	Revision uint64
}

// GetFunction returns the function named name.
func (s *Store) GetFunction(ctx context.Context, name string) (Function, error) {
	f, rev, err := s.fns.get(ctx, name)
	if err != nil {
		return Function{}, err
	}
	return Function{Function: f, Revision: rev}, nil
}

// CreateFunction stores a new function; ErrExists if the name is taken.
func (s *Store) CreateFunction(ctx context.Context, f *lambda.Function) (uint64, error) {
	return s.fns.create(ctx, f.Config.FunctionName, f)
}

// UpdateFunction replaces a function if it is still at revision rev; ErrConflict otherwise.
func (s *Store) UpdateFunction(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error) {
	return s.fns.update(ctx, f.Config.FunctionName, f, rev)
}

// DeleteFunction removes a function with its versions and aliases; ErrNotFound if absent. It
// returns the functions bucket's revision of the deletion (or a later one).
func (s *Store) DeleteFunction(ctx context.Context, name string) (uint64, error) {
	rev, err := s.fns.remove(ctx, name)
	if err != nil {
		return 0, err
	}
	return rev, s.deleteDependents(ctx, name)
}

// deleteDependents removes what belongs to a deleted function.
func (s *Store) deleteDependents(ctx context.Context, name string) error {
	urls, err := s.ListFunctionURLs(ctx, name)
	if err != nil {
		return err
	}
	for _, u := range urls {
		if err := s.urls.kv.Purge(ctx, u.ID); err != nil {
			return fmt.Errorf("delete function url %s: %w", u.ID, err)
		}
	}
	for _, kv := range []jetstream.KeyValue{s.versions.kv, s.aliases.kv, s.prov.kv, s.eic.kv, s.policies.kv} {
		lister, err := kv.ListKeysFiltered(ctx, name+".*")
		if err != nil {
			return fmt.Errorf("delete function %s: %w", name, err)
		}
		for k := range lister.Keys() {
			if err := kv.Purge(ctx, k); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
	}
	return nil
}

// ListFunctions returns every function, sorted by name.
func (s *Store) ListFunctions(ctx context.Context) ([]*lambda.Function, error) {
	return s.fns.list(ctx, ">")
}

// WatchFunctions calls fn for every change to a function (f is nil when deleted), with the KV
// revision of the change, until ctx ends. It first replays the current state, then calls ready.
func (s *Store) WatchFunctions(ctx context.Context, ready func(), fn func(name string, rev uint64, f *lambda.Function)) error {
	return s.fns.watch(ctx, ready, fn)
}

// envAAD binds a function record's sealed variables to the record: an envelope copied into
// another record does not open.
func envAAD(bucket, key string) []byte { return []byte(bucket + "/" + key) }

// sealEnv stores a function's environment variables encrypted.
func (s *Store) sealEnv(bucket string) func(key string, f *lambda.Function) (*lambda.Function, error) {
	return func(key string, f *lambda.Function) (*lambda.Function, error) {
		vars := f.Env()
		if len(vars) == 0 {
			if f.EnvSealed == nil {
				return f, nil
			}
			c := *f
			c.EnvSealed = nil
			return &c, nil
		}
		env, err := s.keyring.SealMap(vars, envAAD(bucket, key))
		if err != nil {
			return nil, err
		}
		c := *f
		c.Config.Environment = nil
		if c.EnvSealed, err = json.Marshal(env); err != nil {
			return nil, err
		}
		return &c, nil
	}
}

// openEnv restores a function's environment variables from their envelope.
func (s *Store) openEnv(bucket string) func(key string, f *lambda.Function) error {
	return func(key string, f *lambda.Function) error {
		vars, err := s.openVars(bucket, key, f)
		if err != nil || vars == nil {
			return err
		}
		f.Config.Environment = &lambda.EnvironmentResp{Variables: vars}
		f.EnvSealed = nil
		return nil
	}
}

func (s *Store) openVars(bucket, key string, f *lambda.Function) (map[string]string, error) {
	if len(f.EnvSealed) == 0 {
		return f.Env(), nil
	}
	var env crypt.Envelope
	if err := json.Unmarshal(f.EnvSealed, &env); err != nil {
		return nil, err
	}
	return s.keyring.OpenMap(env, envAAD(bucket, key))
}

// Sealed returns f as the store keeps it, its variables encrypted (f itself if it has none):
// what the invoke cache holds, so that variables are in the clear only while an environment
// starts or an API read returns them.
func (s *Store) Sealed(f *lambda.Function) (*lambda.Function, error) {
	if len(f.Env()) == 0 {
		return f, nil
	}
	if f.Config.Version == "" || f.Config.Version == "$LATEST" {
		return s.sealEnv(functionsBucket)(f.Config.FunctionName, f)
	}
	n, err := strconv.Atoi(f.Config.Version)
	if err != nil {
		return nil, fmt.Errorf("function %s: version %q", f.Config.FunctionName, f.Config.Version)
	}
	return s.sealEnv(versionsBucket)(VersionKey(f.Config.FunctionName, n), f)
}

// FunctionEnv decrypts the environment variables of a function or version record as a watch
// delivered it (sealed): called when an environment starts, never on a warm invoke.
func (s *Store) FunctionEnv(f *lambda.Function) (map[string]string, error) {
	if f.Config.Version == "" || f.Config.Version == "$LATEST" {
		return s.openVars(functionsBucket, f.Config.FunctionName, f)
	}
	n, err := strconv.Atoi(f.Config.Version)
	if err != nil {
		return nil, fmt.Errorf("function %s: version %q", f.Config.FunctionName, f.Config.Version)
	}
	return s.openVars(versionsBucket, VersionKey(f.Config.FunctionName, n), f)
}

// RewrapEnv moves every function's and version's sealed variables to the keyring's active
// master key (after a rotation) without decrypting them, and returns how many records it
// rewrote. Records changed meanwhile are read again.
func (s *Store) RewrapEnv(ctx context.Context) (int, error) {
	n := 0
	for _, b := range []bucket[lambda.Function]{s.fns, s.versions} {
		keys, err := b.keys(ctx, ">")
		if err != nil {
			return n, err
		}
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				e, err := b.kv.Get(ctx, key)
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					break
				}
				if err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				var f lambda.Function
				if err := json.Unmarshal(e.Value(), &f); err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				if len(f.EnvSealed) == 0 {
					break
				}
				var env crypt.Envelope
				if err := json.Unmarshal(f.EnvSealed, &env); err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				next, changed, err := s.keyring.Rewrap(env)
				if err != nil {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
				if !changed {
					break
				}
				if f.EnvSealed, err = json.Marshal(next); err != nil {
					return n, err
				}
				data, err := json.Marshal(&f)
				if err != nil {
					return n, err
				}
				if _, err := b.kv.Update(ctx, key, data, e.Revision()); err == nil {
					n++
					break
				} else if attempt >= 5 {
					return n, fmt.Errorf("rewrap %s %s: %w", b.what, key, err)
				}
			}
		}
	}
	return n, nil
}

// VersionKey is the KV key of version n of a function.
func VersionKey(name string, n int) string { return name + "." + strconv.Itoa(n) }

// AliasKey is the KV key of an alias.
func AliasKey(name, alias string) string { return name + "." + alias }

// GetVersion returns a published version and its KV revision.
func (s *Store) GetVersion(ctx context.Context, name string, n int) (*lambda.Function, uint64, error) {
	return s.versions.get(ctx, VersionKey(name, n))
}

// CreateVersion stores a published version (immutable).
func (s *Store) CreateVersion(ctx context.Context, v *lambda.Function, n int) (uint64, error) {
	return s.versions.create(ctx, VersionKey(v.Config.FunctionName, n), v)
}

// DeleteVersion removes a published version; it returns the deletion's revision (or a later one).
func (s *Store) DeleteVersion(ctx context.Context, name string, n int) (uint64, error) {
	return s.versions.remove(ctx, VersionKey(name, n))
}

// ListVersions returns a function's published versions in version order.
func (s *Store) ListVersions(ctx context.Context, name string) ([]*lambda.Function, error) {
	vs, err := s.versions.list(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(vs, func(a, b *lambda.Function) int { return versionNumber(a) - versionNumber(b) })
	return vs, nil
}

func versionNumber(f *lambda.Function) int {
	n, _ := strconv.Atoi(f.Config.Version)
	return n
}

// WatchVersions reports version changes (deletions: v nil) with their KV keys.
func (s *Store) WatchVersions(ctx context.Context, ready func(), fn func(key string, rev uint64, v *lambda.Function)) error {
	return s.versions.watch(ctx, ready, fn)
}

// Alias is a stored alias with its revision.
type Alias struct {
	*lambda.Alias
	Revision uint64
}

// GetAlias returns an alias.
func (s *Store) GetAlias(ctx context.Context, name, alias string) (Alias, error) {
	a, rev, err := s.aliases.get(ctx, AliasKey(name, alias))
	if err != nil {
		return Alias{}, err
	}
	return Alias{Alias: a, Revision: rev}, nil
}

// CreateAlias stores a new alias; ErrExists if taken.
func (s *Store) CreateAlias(ctx context.Context, name string, a *lambda.Alias) (uint64, error) {
	return s.aliases.create(ctx, AliasKey(name, a.Name), a)
}

// UpdateAlias replaces an alias at revision rev; ErrConflict otherwise.
func (s *Store) UpdateAlias(ctx context.Context, name string, a *lambda.Alias, rev uint64) (uint64, error) {
	return s.aliases.update(ctx, AliasKey(name, a.Name), a, rev)
}

// DeleteAlias removes an alias; it returns the deletion's revision (or a later one).
func (s *Store) DeleteAlias(ctx context.Context, name, alias string) (uint64, error) {
	return s.aliases.remove(ctx, AliasKey(name, alias))
}

// ListAliases returns a function's aliases by name.
func (s *Store) ListAliases(ctx context.Context, name string) ([]*lambda.Alias, error) {
	return s.aliases.list(ctx, name+".*")
}

// WatchAliases reports alias changes (deletions: a nil) with their KV keys.
func (s *Store) WatchAliases(ctx context.Context, ready func(), fn func(key string, rev uint64, a *lambda.Alias)) error {
	return s.aliases.watch(ctx, ready, fn)
}

// PutCode stores a code package under key (its hex SHA-256) unless it is already there.
func (s *Store) PutCode(ctx context.Context, key string, zip []byte) error {
	if _, err := s.code.GetInfo(ctx, key); err == nil {
		return nil
	}
	if _, err := s.code.PutBytes(ctx, key, zip); err != nil {
		return fmt.Errorf("store code %s: %w", key, err)
	}
	return nil
}

// GetCode returns the code package stored under key.
func (s *Store) GetCode(ctx context.Context, key string) ([]byte, error) {
	b, err := s.code.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get code %s: %w", key, err)
	}
	return b, nil
}

// DeleteCode removes a code package.
func (s *Store) DeleteCode(ctx context.Context, key string) error {
	if err := s.code.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete code %s: %w", key, err)
	}
	return nil
}

// StoredCode is one code package in the object store.
type StoredCode struct {
	Key     string
	ModTime time.Time
}

// ListCode returns every stored code package (its key and when it was stored).
func (s *Store) ListCode(ctx context.Context) ([]StoredCode, error) {
	infos, err := s.code.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list code: %w", err)
	}
	out := make([]StoredCode, 0, len(infos))
	for _, in := range infos {
		if !in.Deleted {
			out = append(out, StoredCode{Key: in.Name, ModTime: in.ModTime})
		}
	}
	return out, nil
}

// PutProvisioned stores a provisioned-concurrency config for NAME.QUALIFIER.
func (s *Store) PutProvisioned(ctx context.Context, name, qualifier string, pc *lambda.ProvisionedConcurrency) (uint64, error) {
	return s.prov.put(ctx, AliasKey(name, qualifier), pc)
}

// GetProvisioned returns the provisioned-concurrency config of NAME.QUALIFIER.
func (s *Store) GetProvisioned(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrency, uint64, error) {
	return s.prov.get(ctx, AliasKey(name, qualifier))
}

// DeleteProvisioned removes a provisioned-concurrency config; it returns the deletion's revision
// (or a later one).
func (s *Store) DeleteProvisioned(ctx context.Context, name, qualifier string) (uint64, error) {
	return s.prov.remove(ctx, AliasKey(name, qualifier))
}

// ListProvisioned returns a function's provisioned-concurrency configs by qualifier.
func (s *Store) ListProvisioned(ctx context.Context, name string) (map[string]*lambda.ProvisionedConcurrency, error) {
	keys, err := s.prov.keys(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*lambda.ProvisionedConcurrency, len(keys))
	for _, k := range keys {
		pc, _, err := s.prov.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(k, name+".")] = pc
	}
	return out, nil
}

// WatchProvisioned reports provisioned-concurrency changes (deletions: nil) by KV key.
func (s *Store) WatchProvisioned(ctx context.Context, ready func(), fn func(key string, rev uint64, pc *lambda.ProvisionedConcurrency)) error {
	return s.prov.watch(ctx, ready, fn)
}

// PolicyKey is the KV key of the policy of NAME's qualifier ("": the unqualified function).
func PolicyKey(name, qualifier string) string {
	if qualifier == "" {
		return name + ".=" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// GetPolicy returns a policy and its revision (ErrNotFound if none).
func (s *Store) GetPolicy(ctx context.Context, name, qualifier string) (*lambda.StoredPolicy, uint64, error) {
	return s.policies.get(ctx, PolicyKey(name, qualifier))
}

// PutPolicy stores a policy: created when rev is 0, else replaced if still at rev (ErrConflict).
// It returns the new revision.
func (s *Store) PutPolicy(ctx context.Context, name, qualifier string, p *lambda.StoredPolicy, rev uint64) (uint64, error) {
	if rev == 0 {
		n, err := s.policies.create(ctx, PolicyKey(name, qualifier), p)
		if errors.Is(err, ErrExists) {
			err = fmt.Errorf("policy %s: %w", PolicyKey(name, qualifier), ErrConflict)
		}
		return n, err
	}
	return s.policies.update(ctx, PolicyKey(name, qualifier), p, rev)
}

// DeletePolicy removes a policy; it returns the deletion's revision (or a later one).
func (s *Store) DeletePolicy(ctx context.Context, name, qualifier string) (uint64, error) {
	return s.policies.remove(ctx, PolicyKey(name, qualifier))
}

// WatchPolicies reports policy changes (deletions: p nil) with their KV keys.
func (s *Store) WatchPolicies(ctx context.Context, ready func(), fn func(key string, rev uint64, p *lambda.StoredPolicy)) error {
	return s.policies.watch(ctx, ready, fn)
}

// eicKey is the KV key of NAME's config for qualifier ("" or $LATEST: the unqualified function).
func eicKey(name, qualifier string) string {
	if qualifier == "" || qualifier == lambda.LatestVersion {
		return name + ".=latest" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// PutEventInvokeConfig stores (creates or replaces) an asynchronous invocation config.
func (s *Store) PutEventInvokeConfig(ctx context.Context, name, qualifier string, c *lambda.EventInvokeConfig) error {
	_, err := s.eic.put(ctx, eicKey(name, qualifier), c)
	return err
}

// GetEventInvokeConfig returns an asynchronous invocation config.
func (s *Store) GetEventInvokeConfig(ctx context.Context, name, qualifier string) (*lambda.EventInvokeConfig, error) {
	c, _, err := s.eic.get(ctx, eicKey(name, qualifier))
	return c, err
}

// DeleteEventInvokeConfig removes an asynchronous invocation config.
func (s *Store) DeleteEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	return s.eic.delete(ctx, eicKey(name, qualifier))
}

// ListEventInvokeConfigs returns a function's asynchronous invocation configs.
func (s *Store) ListEventInvokeConfigs(ctx context.Context, name string) ([]*lambda.EventInvokeConfig, error) {
	return s.eic.list(ctx, name+".*")
}

// CreateFunctionURL stores a new function URL under its id; it returns the revision.
func (s *Store) CreateFunctionURL(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	return s.urls.create(ctx, u.ID, u)
}

// UpdateFunctionURL replaces a function URL; it returns the new revision.
func (s *Store) UpdateFunctionURL(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	_, rev, err := s.urls.get(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	return s.urls.update(ctx, u.ID, u, rev)
}

// GetFunctionURLByID returns the function URL with this id.
func (s *Store) GetFunctionURLByID(ctx context.Context, id string) (*lambda.FunctionURL, error) {
	u, _, err := s.urls.get(ctx, id)
	return u, err
}

// DeleteFunctionURL removes a function URL; it returns the deletion's revision (or a later one).
func (s *Store) DeleteFunctionURL(ctx context.Context, id string) (uint64, error) {
	return s.urls.remove(ctx, id)
}

// ListFunctionURLs returns a function's URLs (one per qualifier).
func (s *Store) ListFunctionURLs(ctx context.Context, name string) ([]*lambda.FunctionURL, error) {
	all, err := s.urls.list(ctx, ">")
	if err != nil {
		return nil, err
	}
	var out []*lambda.FunctionURL
	for _, u := range all {
		if u.Function == name {
			out = append(out, u)
		}
	}
	return out, nil
}

// WatchFunctionURLs reports function URL changes (deletions: nil) by URL id.
func (s *Store) WatchFunctionURLs(ctx context.Context, ready func(), fn func(id string, rev uint64, u *lambda.FunctionURL)) error {
	return s.urls.watch(ctx, ready, fn)
}

func scheduleKey(group, name string) string { return group + "." + name }

// CreateSchedule stores a new schedule; ErrExists if taken.
func (s *Store) CreateSchedule(ctx context.Context, sc *lambda.Schedule) error {
	_, err := s.scheds.create(ctx, scheduleKey(sc.GroupName, sc.Name), sc)
	return err
}

// UpdateSchedule replaces a schedule; ErrNotFound if absent.
func (s *Store) UpdateSchedule(ctx context.Context, sc *lambda.Schedule) error {
	key := scheduleKey(sc.GroupName, sc.Name)
	_, rev, err := s.scheds.get(ctx, key)
	if err != nil {
		return err
	}
	_, err = s.scheds.update(ctx, key, sc, rev)
	return err
}

// GetSchedule returns a schedule.
func (s *Store) GetSchedule(ctx context.Context, group, name string) (*lambda.Schedule, error) {
	sc, _, err := s.scheds.get(ctx, scheduleKey(group, name))
	return sc, err
}

// DeleteSchedule removes a schedule and its firing state.
func (s *Store) DeleteSchedule(ctx context.Context, group, name string) error {
	if err := s.scheds.delete(ctx, scheduleKey(group, name)); err != nil {
		return err
	}
	if err := s.schedSt.delete(ctx, scheduleKey(group, name)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// ListSchedules returns every schedule, by group and name.
func (s *Store) ListSchedules(ctx context.Context) ([]*lambda.Schedule, error) {
	return s.scheds.list(ctx, ">")
}

// WatchSchedules reports schedule changes (deletions: nil).
func (s *Store) WatchSchedules(ctx context.Context, ready func(), fn func(key string, rev uint64, sc *lambda.Schedule)) error {
	return s.scheds.watch(ctx, ready, fn)
}

// ScheduleState returns when a schedule last fired (zero if never).
func (s *Store) ScheduleState(ctx context.Context, group, name string) (lambda.ScheduleState, error) {
	st, _, err := s.schedSt.get(ctx, scheduleKey(group, name))
	if errors.Is(err, ErrNotFound) {
		return lambda.ScheduleState{}, nil
	}
	if err != nil {
		return lambda.ScheduleState{}, err
	}
	return *st, nil
}

// PutScheduleState records a schedule's last firing.
func (s *Store) PutScheduleState(ctx context.Context, group, name string, st lambda.ScheduleState) error {
	_, err := s.schedSt.put(ctx, scheduleKey(group, name), &st)
	return err
}

// NextLayerVersion claims the next version number of a layer (never reused).
func (s *Store) NextLayerVersion(ctx context.Context, name string) (int, error) {
	for attempt := 0; attempt < 10; attempt++ {
		last, rev, err := s.layerSeq.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			one := 1
			if _, err := s.layerSeq.create(ctx, name, &one); errors.Is(err, ErrExists) {
				continue
			} else if err != nil {
				return 0, err
			}
			return 1, nil
		}
		if err != nil {
			return 0, err
		}
		next := *last + 1
		if _, err := s.layerSeq.update(ctx, name, &next, rev); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return 0, err
		}
		return next, nil
	}
	return 0, fmt.Errorf("layer %s: %w", name, ErrConflict)
}

// PutLayerVersion stores a published layer version.
func (s *Store) PutLayerVersion(ctx context.Context, name string, l *lambda.StoredLayer) error {
	_, err := s.layers.create(ctx, VersionKey(name, l.Layer.Version), l)
	return err
}

// GetLayerVersion returns a layer version.
func (s *Store) GetLayerVersion(ctx context.Context, name string, n int) (*lambda.StoredLayer, error) {
	l, _, err := s.layers.get(ctx, VersionKey(name, n))
	return l, err
}

// DeleteLayerVersion removes a layer version (its content stays for the functions using it).
func (s *Store) DeleteLayerVersion(ctx context.Context, name string, n int) error {
	return s.layers.delete(ctx, VersionKey(name, n))
}

// ListLayerVersions returns every layer version, or one layer's when name is set, by name and
// version.
func (s *Store) ListLayerVersions(ctx context.Context, name string) ([]*lambda.StoredLayer, error) {
	filter := ">"
	if name != "" {
		filter = name + ".*"
	}
	all, err := s.layers.list(ctx, filter)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *lambda.StoredLayer) int {
		if c := strings.Compare(a.Layer.LayerArn, b.Layer.LayerArn); c != 0 {
			return c
		}
		return a.Layer.Version - b.Layer.Version
	})
	return all, nil
}

// CreateEventSourceMapping stores a new event source mapping under its UUID.
func (s *Store) CreateEventSourceMapping(ctx context.Context, m *lambda.EventSourceMapping) error {
	_, err := s.esms.create(ctx, m.UUID, m)
	return err
}

// GetEventSourceMapping returns a mapping and its revision (ErrNotFound if none).
func (s *Store) GetEventSourceMapping(ctx context.Context, uuid string) (*lambda.EventSourceMapping, uint64, error) {
	return s.esms.get(ctx, uuid)
}

// UpdateEventSourceMapping replaces a mapping if it is still at rev (ErrConflict otherwise).
func (s *Store) UpdateEventSourceMapping(ctx context.Context, m *lambda.EventSourceMapping, rev uint64) error {
	_, err := s.esms.update(ctx, m.UUID, m, rev)
	return err
}

// DeleteEventSourceMapping removes a mapping.
func (s *Store) DeleteEventSourceMapping(ctx context.Context, uuid string) error {
	return s.esms.delete(ctx, uuid)
}

// ListEventSourceMappings returns every mapping in UUID order.
func (s *Store) ListEventSourceMappings(ctx context.Context) ([]*lambda.EventSourceMapping, error) {
	return s.esms.list(ctx, ">")
}

// WatchEventSourceMappings reports mapping changes (deletions: nil) by UUID.
func (s *Store) WatchEventSourceMappings(ctx context.Context, ready func(), fn func(uuid string, rev uint64, m *lambda.EventSourceMapping)) error {
	return s.esms.watch(ctx, ready, fn)
}
