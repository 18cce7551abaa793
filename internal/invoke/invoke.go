// Package invoke is the invocation service: Service.Invoke is the one way any invocation runs
// (the Invoke API, function URLs, async events and schedules through the async queue, event
// source mappings). It resolves function name and qualifier ($LATEST, a version, or an alias
// with weighted routing) to a configuration and the worker pool that serves it, admits the
// invocation against the account's and the function's concurrency (the cluster's, through a
// lease ledger, admit.go), counts throttles, and runs it on the pool. In a cluster, what this
// node has no idle environment for goes to another node's warm one, else a cold start on the
// node with the most free memory budget, spilling over to the next when that one has no room
// (route.go); a draining node sends all its callers' invocations elsewhere (drain.go), and
// provisioned concurrency is split across the live nodes (spread.go). It keeps everything in
// memory in a view written only by the store's KV watches (writers read their own writes with
// Await), so the warm path touches neither disk nor JetStream. It knows nothing of HTTP; only it
// reaches the worker's pools.
package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/apigw"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/telemetry"
	"github.com/flint-run/flint/internal/worker"
)

// ErrNotFound means no such function, version or alias.
var ErrNotFound = errors.New("invoke: function not found")

// Metrics counts throttles (telemetry.Metrics).
type Metrics interface {
	Throttled(function, version, reason string)
}

// Registry is what the service reads of the store, one repository each (store.Functions, …):
// it watches them to keep its view, and reads them where the view cannot answer (a record
// newer than the view, code).
type Registry struct {
	Functions interface {
		Get(ctx context.Context, name string) (store.Function, error)
		Watch(ctx context.Context, ready func(), fn func(name string, rev uint64, f *lambda.Function)) error
		Sealed(f *lambda.Function) (*lambda.Function, error)
		Env(f *lambda.Function) (map[string]string, error)
		Revision(ctx context.Context) (uint64, error)
	}
	Versions interface {
		Get(ctx context.Context, name string, n int) (*lambda.Function, uint64, error)
		Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, v *lambda.Function)) error
		Revision(ctx context.Context) (uint64, error)
	}
	Aliases interface {
		Get(ctx context.Context, name, alias string) (store.Alias, error)
		Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, a *lambda.Alias)) error
		Revision(ctx context.Context) (uint64, error)
	}
	Provisioned interface {
		Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, pc *lambda.ProvisionedConcurrency)) error
		Revision(ctx context.Context) (uint64, error)
	}
	URLs interface {
		Get(ctx context.Context, id string) (*lambda.FunctionURL, error)
		Watch(ctx context.Context, ready func(), fn func(id string, rev uint64, u *lambda.FunctionURL)) error
		Revision(ctx context.Context) (uint64, error)
	}
	Policies interface {
		Get(ctx context.Context, name, qualifier string) (*lambda.StoredPolicy, uint64, error)
		Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, p *lambda.StoredPolicy)) error
		Revision(ctx context.Context) (uint64, error)
	}
	EventInvokeConfigs interface {
		Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, c *lambda.EventInvokeConfig)) error
		Revision(ctx context.Context) (uint64, error)
	}
	Code interface {
		Get(ctx context.Context, key string) ([]byte, error)
	}
	APIs interface {
		Watch(ctx context.Context, ready func(), fn func(name string, rev uint64, a *apigw.API)) error
		Revision(ctx context.Context) (uint64, error)
	}
}

// RegistryOf is the Registry backed by st's repositories.
func RegistryOf(st *store.Store) Registry {
	return Registry{Functions: st.Functions(), Versions: st.Versions(), Aliases: st.Aliases(), Provisioned: st.Provisioned(),
		URLs: st.URLs(), Policies: st.Policies(), EventInvokeConfigs: st.EventInvokeConfigs(), Code: st.Code(),
		APIs: st.APIs()}
}

// Service is the in-memory view of every function, version and alias.
type Service struct {
	store        Registry
	workers      *worker.Manager
	code         *artifact.Cache
	limits       artifact.Limits
	log          *slog.Logger
	metrics      Metrics         // nil: none
	tracer       *telemetry.OTLP // nil: no OTLP export (SetTracer)
	accountLimit int64
	// ledger keeps the limits cluster-wide (admit.go); nil on a single node.
	ledger  *cluster.Ledger
	account *cluster.Slots // the account's unreserved pool in the ledger

	mu       sync.RWMutex
	entries  map[string]*Entry     // key: name ($LATEST) or store.VersionKey
	aliases  map[string]*aliasItem // key: store.AliasKey
	prov     map[string]*provItem  // key: NAME.QUALIFIER
	urls     map[string]*urlItem   // key: URL id
	public   map[string]uint64     // key: store.PolicyKey of policies that open NONE URLs; value: revision
	eic      map[string]*eicItem   // key: store.EventInvokeConfigKey
	counters map[string]*counters  // per function name, shared by its versions
	apis     apiView               // API Gateway APIs' route tables (apis.go)
	ready    chan struct{}

	seen [views]watermark // per bucket, the newest revision the watch has applied

	reservedSum       atomic.Int64 // sum of every function's reservation
	claimed           atomic.Int64 // taken from the account's unreserved pool: reservations, and provisioned concurrency of functions without one (admit.go)
	unreservedRunning atomic.Int64 // invocations of functions without a reservation

	router atomic.Pointer[router] // nil on a single node (route.go)
	// draining: this node takes no new work (drain.go); spread: provisioned concurrency is
	// split across the cluster's nodes (SpreadProvisioned).
	draining atomic.Bool
	spread   atomic.Bool
}

// Entry is one function version's configuration (nil Fn: deleted) and the pool of environments
// that runs it, which only this package reaches.
type Entry struct {
	rev      uint64
	Fn       *lambda.Function
	pool     *worker.Pool
	counters *counters
	prov     *provSlots // a published version's provisioned concurrency (admit.go); nil for $LATEST
}

type aliasItem struct {
	rev   uint64
	alias *lambda.Alias
}

type eicItem struct {
	rev uint64
	c   *lambda.EventInvokeConfig // nil: deleted
}

type urlItem struct {
	rev uint64
	url *lambda.FunctionURL
}

type provItem struct {
	rev uint64
	pc  *lambda.ProvisionedConcurrency
}

// New returns a Service; Run keeps it in sync with the store.
// metrics may be nil.
func New(st Registry, workers *worker.Manager, code *artifact.Cache, limits artifact.Limits, accountLimit int, metrics Metrics, log *slog.Logger) *Service {
	return &Service{store: st, workers: workers, code: code, limits: limits, log: log, metrics: metrics, accountLimit: int64(accountLimit),
		entries: make(map[string]*Entry), aliases: make(map[string]*aliasItem), prov: make(map[string]*provItem), urls: make(map[string]*urlItem), public: make(map[string]uint64), eic: make(map[string]*eicItem), counters: make(map[string]*counters),
		ready: make(chan struct{})}
}

// SetTracer makes every invocation from now on begin its trace with t (OTLP export); call it
// before serving.
func (s *Service) SetTracer(t *telemetry.OTLP) { s.tracer = t }

// AccountLimit is the account's concurrency limit.
func (s *Service) AccountLimit() int { return int(s.accountLimit) }

// ReservedTotal is the sum of every function's reserved concurrency.
func (s *Service) ReservedTotal() int { return int(s.reservedSum.Load()) }

// Run applies every change in the store to the cache until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	const watches = 8
	var pending sync.WaitGroup
	pending.Add(watches)
	go func() { pending.Wait(); close(s.ready) }()
	once := func() func() { var o sync.Once; return func() { o.Do(pending.Done) } }
	errs := make(chan error, watches)
	go func() { errs <- s.store.Functions.Watch(ctx, once(), watched(s, Functions, s.applyFunction)) }()
	go func() { errs <- s.store.Versions.Watch(ctx, once(), watched(s, Versions, s.apply)) }()
	go func() { errs <- s.store.Aliases.Watch(ctx, once(), watched(s, Aliases, s.applyAlias)) }()
	go func() { errs <- s.store.Provisioned.Watch(ctx, once(), watched(s, Provisioned, s.applyProvisioned)) }()
	go func() { errs <- s.store.URLs.Watch(ctx, once(), watched(s, URLs, s.applyURL)) }()
	go func() { errs <- s.store.Policies.Watch(ctx, once(), watched(s, Policies, s.applyPolicy)) }()
	go func() {
		errs <- s.store.EventInvokeConfigs.Watch(ctx, once(), watched(s, EventInvokeConfigs, s.applyEventInvokeConfig))
	}()
	go func() { errs <- s.store.APIs.Watch(ctx, once(), watched(s, APIs, s.applyAPI)) }()
	var err error
	for range watches {
		err = errors.Join(err, <-errs)
	}
	return err
}

// Ready is closed once the cache holds everything stored at start.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// applyFunction installs revision rev of a function's $LATEST (f nil: deleted, with its versions,
// aliases and provisioned-concurrency configs) unless a newer one is known.
func (s *Service) applyFunction(name string, rev uint64, f *lambda.Function) {
	s.apply(name, rev, f)
	if f == nil { // the versions and aliases went with it
		s.mu.Lock()
		var retire []*worker.Pool
		for k, e := range s.entries {
			if strings.HasPrefix(k, name+".") && e.Fn != nil {
				retire = append(retire, e.pool)
				s.entries[k] = &Entry{rev: e.rev}
			}
		}
		for k := range s.aliases {
			if strings.HasPrefix(k, name+".") {
				delete(s.aliases, k)
			}
		}
		for k := range s.prov {
			if strings.HasPrefix(k, name+".") {
				delete(s.prov, k)
			}
		}
		s.mu.Unlock()
		for _, p := range retire {
			p.Retire()
		}
		s.reprovision(name) // its provisioned concurrency no longer counts against the account
	}
}

func (s *Service) apply(key string, rev uint64, f *lambda.Function) {
	if f != nil && len(f.Env()) > 0 { // a record in the clear: keep it sealed like the others
		sealed, err := s.store.Functions.Sealed(f)
		if err != nil {
			s.log.Error("seal a function's variables for the cache", "function", key, "err", err)
		} else {
			f = sealed
		}
	}
	s.mu.Lock()
	old := s.entries[key]
	if old != nil && rev <= old.rev {
		s.mu.Unlock()
		return
	}
	name, _, _ := strings.Cut(key, ".")
	c := s.counters[name]
	if c == nil {
		c = s.newCounters(name)
		s.counters[name] = c
	}
	e := &Entry{rev: rev, Fn: f, counters: c}
	if key != name {
		if old != nil && old.prov != nil {
			e.prov = old.prov // invocations on its provisioned slots may still run
		} else {
			e.prov = &provSlots{}
			if s.ledger != nil {
				e.prov.slots = s.ledger.Slots("provisioned." + key)
			}
		}
	}
	keep := f != nil && old != nil && old.Fn != nil && old.pool != nil && s.sameEnvironments(old.Fn, f)
	switch {
	case keep: // nothing the environments see changed: they stay
		e.pool = old.pool
	case f != nil:
		wf, bind := s.workerFunction(key, f)
		e.pool = s.workers.Pool(wf)
		bind(e.pool)
	}
	s.entries[key] = e
	reprovision := f != nil && key != name
	if key == name { // $LATEST carries the function-wide settings
		r := int64(-1)
		if f != nil && f.ReservedConcurrency != nil {
			r = int64(*f.ReservedConcurrency)
		}
		c.reserved.Store(r)
		s.recountLocked()
		s.limitsChanged(c)
	}
	s.mu.Unlock()
	if old != nil && old.pool != nil && !keep {
		old.pool.Retire()
	}
	if reprovision && !keep {
		s.reprovision(name)
	}
}

// applyAlias installs an alias (a nil: deleted).
func (s *Service) applyAlias(key string, rev uint64, a *lambda.Alias) {
	s.mu.Lock()
	if old := s.aliases[key]; old != nil && rev <= old.rev {
		s.mu.Unlock()
		return
	}
	s.aliases[key] = &aliasItem{rev: rev, alias: a}
	s.mu.Unlock()
	name, _, _ := strings.Cut(key, ".")
	s.reprovision(name)
}

// applyURL installs a function URL (u nil: deleted).
func (s *Service) applyURL(id string, rev uint64, u *lambda.FunctionURL) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.urls[id]; old != nil && rev <= old.rev {
		return
	}
	s.urls[id] = &urlItem{rev: rev, url: u}
}

// applyPolicy tracks which policies let anyone call a NONE function URL.
func (s *Service) applyPolicy(key string, rev uint64, p *lambda.StoredPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p != nil && p.Policy.AllowsPublicURL() {
		s.public[key] = rev
	} else {
		delete(s.public, key)
	}
}

// PublicURL reports whether the resource policy of name's qualifier ("" or an alias) lets
// anyone invoke its NONE function URL. A grant is known from memory; a refusal is checked
// against the store once more, so that a permission added a moment ago by another node (or
// before the watch delivered it) counts. Policy changes are, as on AWS, eventually consistent.
func (s *Service) PublicURL(ctx context.Context, name, qualifier string) bool {
	key := store.PolicyKey(name, qualifier)
	s.mu.RLock()
	_, ok := s.public[key]
	s.mu.RUnlock()
	if ok {
		return true
	}
	p, _, err := s.store.Policies.Get(ctx, name, qualifier)
	return err == nil && p.Policy.AllowsPublicURL()
}

// LookupURL returns the function URL with this id, from memory (the store on a miss).
func (s *Service) LookupURL(ctx context.Context, id string) (*lambda.FunctionURL, error) {
	s.mu.RLock()
	it := s.urls[id]
	s.mu.RUnlock()
	if it != nil {
		if it.url == nil {
			return nil, ErrNotFound
		}
		return it.url, nil
	}
	u, err := s.store.URLs.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return u, err
}

// applyProvisioned installs a provisioned-concurrency config (pc nil: deleted).
func (s *Service) applyProvisioned(key string, rev uint64, pc *lambda.ProvisionedConcurrency) {
	s.mu.Lock()
	if old := s.prov[key]; old != nil && rev <= old.rev {
		s.mu.Unlock()
		return
	}
	s.prov[key] = &provItem{rev: rev, pc: pc}
	s.mu.Unlock()
	name, _, _ := strings.Cut(key, ".")
	s.reprovision(name)
}

// reprovision tells each version pool of a function how many environments to keep initialized:
// the sum of the configs on that version and on aliases whose primary version it is; and
// admission how many of the function's invocations run on them (admit.go).
func (s *Service) reprovision(name string) {
	s.mu.Lock()
	want := map[string]int{}
	var total int64 // every config of the function, as the control plane counts them
	for key, it := range s.prov {
		fn, qualifier, _ := strings.Cut(key, ".")
		if fn != name || it.pc == nil {
			continue
		}
		total += int64(it.pc.Requested)
		if !isVersion(qualifier) {
			al := s.aliases[store.AliasKey(name, qualifier)]
			if al == nil || al.alias == nil {
				continue
			}
			qualifier = al.alias.FunctionVersion
		}
		if n, err := strconv.Atoi(qualifier); err == nil {
			want[store.VersionKey(name, n)] += it.pc.Requested
		}
	}
	type set struct {
		pool *worker.Pool
		n    int
	}
	var sets []set
	for key, e := range s.entries {
		if strings.HasPrefix(key, name+".") && e.pool != nil {
			n := s.provShare(key, want[key])
			if e.prov.slots != nil { // the cluster's, whichever node keeps the environments
				e.prov.limit.Store(int64(want[key]))
				e.prov.slots.SetLimit(want[key])
			} else {
				e.prov.limit.Store(int64(n))
			}
			sets = append(sets, set{e.pool, n})
		}
	}
	c := s.counters[name]
	if c == nil {
		c = s.newCounters(name)
		s.counters[name] = c
	}
	if c.provisioned.Swap(total) != total {
		s.recountLocked()
		s.limitsChanged(c)
	}
	s.mu.Unlock()
	for _, st := range sets {
		st.pool.SetProvisioned(st.n)
	}
}

// Provisioned reports a config's requested count and how many environments are ready for it.
func (s *Service) Provisioned(ctx context.Context, name, qualifier string) (requested, ready int, err error) {
	s.mu.RLock()
	it := s.prov[store.AliasKey(name, qualifier)]
	s.mu.RUnlock()
	if it == nil || it.pc == nil {
		return 0, 0, ErrNotFound
	}
	e, err := s.Lookup(ctx, name, qualifier)
	if err != nil {
		return it.pc.Requested, 0, nil
	}
	desired, allocated := e.pool.Provisioned()
	if s.spread.Load() {
		// The cluster's: this node keeps only its share (spread.go); the others announce theirs.
		if r := s.router.Load(); r != nil {
			c := &e.Fn.Config
			allocated += r.provisionedElsewhere(routeKey(c.FunctionName, c.Version, c.RevisionId))
		}
		return it.pc.Requested, min(allocated, it.pc.Requested), nil
	}
	// Several configs may share a version's environments; report this config's share.
	return it.pc.Requested, min(allocated, it.pc.Requested, max(desired, 0)), nil
}

// Lookup returns what an invoke of name at qualifier runs: $LATEST (qualifier "" or "$LATEST"), a
// published version, or the version an alias routes this invocation to. On a miss it asks the
// store once (written by another node a moment ago) and, if the record is there, waits for the
// watch to bring it into the view.
func (s *Service) Lookup(ctx context.Context, name, qualifier string) (*Entry, error) {
	switch {
	case qualifier == "" || qualifier == lambda.LatestVersion:
		return s.entry(ctx, Functions, name, func() (uint64, error) {
			f, err := s.store.Functions.Get(ctx, name)
			return f.Revision, err
		})
	case isVersion(qualifier):
		n, _ := strconv.Atoi(qualifier)
		return s.version(ctx, name, n)
	default:
		a, err := s.alias(ctx, name, qualifier)
		if err != nil {
			return nil, err
		}
		target := a.FunctionVersion
		if rc := a.RoutingConfig; rc != nil {
			r := rand.Float64()
			for v, w := range rc.AdditionalVersionWeights {
				if r < w {
					target = v
				}
			}
		}
		if target == lambda.LatestVersion {
			return s.Lookup(ctx, name, "")
		}
		n, err := strconv.Atoi(target)
		if err != nil {
			return nil, ErrNotFound
		}
		return s.version(ctx, name, n)
	}
}

func isVersion(q string) bool {
	_, err := strconv.Atoi(q)
	return err == nil && q[0] != '-' && q[0] != '+'
}

func (s *Service) version(ctx context.Context, name string, n int) (*Entry, error) {
	if _, err := s.Lookup(ctx, name, ""); err != nil {
		return nil, err // a version of a deleted function is gone too
	}
	return s.entry(ctx, Versions, store.VersionKey(name, n), func() (uint64, error) {
		_, rev, err := s.store.Versions.Get(ctx, name, n)
		return rev, err
	})
}

// entry returns the view's entry for key (of bucket v); on a miss, load reads the record's
// revision from the store and entry waits for the watch to have applied it.
func (s *Service) entry(ctx context.Context, v View, key string, load func() (uint64, error)) (*Entry, error) {
	s.mu.RLock()
	e := s.entries[key]
	s.mu.RUnlock()
	if e == nil {
		rev, err := load()
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if err := s.Await(ctx, v, rev); err != nil {
			return nil, err
		}
		s.mu.RLock()
		e = s.entries[key]
		s.mu.RUnlock()
	}
	if e == nil || e.Fn == nil {
		return nil, ErrNotFound
	}
	return e, nil
}

func (s *Service) alias(ctx context.Context, name, alias string) (*lambda.Alias, error) {
	key := store.AliasKey(name, alias)
	s.mu.RLock()
	it := s.aliases[key]
	s.mu.RUnlock()
	if it == nil {
		a, err := s.store.Aliases.Get(ctx, name, alias)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if err := s.Await(ctx, Aliases, a.Revision); err != nil {
			return nil, err
		}
		s.mu.RLock()
		it = s.aliases[key]
		s.mu.RUnlock()
	}
	if it == nil || it.alias == nil {
		return nil, ErrNotFound
	}
	return it.alias, nil
}

// sameEnvironments reports whether b differs from a only in what no environment sees: its
// variables rewrapped under another master key, or the function-wide settings kept on
// $LATEST's record (reserved concurrency, the last version number, tags). Publishing a version,
// setting concurrency or rotating the master key then keeps the warm environments, as on AWS.
func (s *Service) sameEnvironments(a, b *lambda.Function) bool {
	ca, cb := *a, *b
	for _, c := range []*lambda.Function{&ca, &cb} {
		c.EnvSealed, c.Config.Environment = nil, nil
		c.ReservedConcurrency, c.LastVersion, c.Tags = nil, 0, nil
		// Settings an environment never sees; a publish gives $LATEST a new RevisionId and
		// nothing else.
		c.CodeSigningConfigArn, c.RecursiveLoop, c.Config.RevisionId = "", "", ""
	}
	ja, _ := json.Marshal(&ca)
	jb, _ := json.Marshal(&cb)
	if !bytes.Equal(ja, jb) {
		return false
	}
	if len(a.EnvSealed) > 0 && len(b.EnvSealed) > 0 {
		var ea, eb crypt.Envelope
		if json.Unmarshal(a.EnvSealed, &ea) == nil && json.Unmarshal(b.EnvSealed, &eb) == nil &&
			bytes.Equal(ea.Ciphertext, eb.Ciphertext) && bytes.Equal(ea.Nonce, eb.Nonce) {
			return true
		}
	}
	va, errA := s.store.Functions.Env(a)
	vb, errB := s.store.Functions.Env(b)
	return errA == nil && errB == nil && maps.Equal(va, vb)
}

// workerFunction describes the function stored under key (name or store.VersionKey) to the
// worker; bind gives it the pool made for it. Its variables are decrypted from the entry current
// when an environment starts, so a pool kept across a master-key rotation opens them with the
// new key; a retired pool (its environments finishing the invocations they started on it) keeps
// its own, so an invocation runs on one configuration.
func (s *Service) workerFunction(entryKey string, f *lambda.Function) (fn worker.Function, bind func(*worker.Pool)) {
	var pool *worker.Pool // set by bind before the entry is published; read under s.mu
	rt, _ := runtimes.Lookup(f.Config.Runtime)
	key := f.CodeKey
	unpack := func(ctx context.Context, key string) (string, error) {
		return s.code.Ensure(ctx, key, s.limits, func(ctx context.Context) ([]byte, error) {
			b, err := s.store.Code.Get(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("fetch code: %w", err)
			}
			return b, nil
		})
	}
	layerKeys := f.LayerKeys
	return worker.Function{
		Name:        f.Config.FunctionName,
		Version:     f.Config.Version,
		ARN:         f.Config.FunctionArn,
		Runtime:     rt,
		Handler:     f.Config.Handler,
		MemoryMB:    f.Config.MemorySize,
		Timeout:     time.Duration(f.Config.Timeout) * time.Second,
		EphemeralMB: f.EphemeralMB(),
		Logging:     workerLogging(f.Config.LoggingConfig),
		Env: func() (map[string]string, error) {
			cur := f
			s.mu.RLock()
			if e := s.entries[entryKey]; e != nil && e.Fn != nil && e.pool == pool {
				cur = e.Fn
			}
			s.mu.RUnlock()
			return s.store.Functions.Env(cur)
		},
		Code: func(ctx context.Context) (string, error) { return unpack(ctx, key) },
		Opt: func(ctx context.Context) (string, error) {
			dirs := make([]string, 0, len(layerKeys))
			for _, k := range layerKeys {
				d, err := unpack(ctx, k)
				if err != nil {
					return "", err
				}
				dirs = append(dirs, d)
			}
			return s.code.Merge(dirs)
		},
	}, func(p *worker.Pool) { pool = p }
}

// workerLogging is a LoggingConfig as the worker applies it.
func workerLogging(c *lambda.LoggingConfig) worker.Logging {
	if c == nil {
		return worker.Logging{}
	}
	return worker.Logging{JSON: c.LogFormat == "JSON", ApplicationLevel: c.ApplicationLogLevel,
		SystemLevel: c.SystemLogLevel, Group: c.LogGroup}
}
