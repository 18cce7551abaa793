package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucket is a KV bucket of JSON records of one type, with Lambda-style sentinels.
type bucket[T any] struct {
	kv   jetstream.KeyValue
	what string // for messages: "function", "version", "alias"
	log  *slog.Logger
	// seal, when set, returns what is stored for v under key (secrets encrypted); open undoes it
	// on get and list. Watches deliver records sealed.
	seal func(key string, v *T) (*T, error)
	open func(key string, v *T) error
	// index, when set, keeps the sorted keys page lists, as of one revision of the bucket.
	index *keyIndex
}

// keyIndex is a bucket's sorted keys as of the last sequence of its stream they were listed at:
// paging through N records lists the N keys once, not once a page, while nothing is written.
type keyIndex struct {
	mu     sync.Mutex
	filter string
	seq    uint64
	keys   []string // sorted; never modified once stored
}

// get returns the keys matching filter as of seq, if they are the ones kept.
func (x *keyIndex) get(filter string, seq uint64) ([]string, bool) {
	if x == nil {
		return nil, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.keys, x.keys != nil && x.filter == filter && x.seq == seq
}

func (x *keyIndex) put(filter string, seq uint64, keys []string) {
	if x == nil {
		return
	}
	x.mu.Lock()
	x.filter, x.seq, x.keys = filter, seq, keys
	x.mu.Unlock()
}

func (b bucket[T]) encode(key string, v *T) ([]byte, error) {
	if b.seal != nil {
		sealed, err := b.seal(key, v)
		if err != nil {
			return nil, fmt.Errorf("seal %s %s: %w", b.what, key, err)
		}
		v = sealed
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.what, err)
	}
	return data, nil
}

func (b bucket[T]) get(ctx context.Context, key string) (*T, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	// A read sent as a cluster node leaves can find no responder for a moment: ask again, a
	// few times.
	for wait := 50 * time.Millisecond; errors.Is(err, nats.ErrNoResponders) && wait < 2*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("get %s %s: %w", b.what, key, err)
		case <-time.After(wait):
		}
		e, err = b.kv.Get(ctx, key)
	}
	// A key that cannot be stored (a name with characters no resource's name has, like an
	// alias "$latest") names nothing: not found, as AWS answers.
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, fmt.Errorf("%s %s: %w", b.what, key, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s %s: %w", b.what, key, err)
	}
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return nil, 0, fmt.Errorf("decode %s %s: %w", b.what, key, err)
	}
	if b.open != nil {
		if err := b.open(key, &v); err != nil {
			return nil, 0, fmt.Errorf("open %s %s: %w", b.what, key, err)
		}
	}
	return &v, e.Revision(), nil
}

func (b bucket[T]) create(ctx context.Context, key string, v *T) (uint64, error) {
	data, err := b.encode(key, v)
	if err != nil {
		return 0, err
	}
	rev, err := b.kv.Create(ctx, key, data)
	for wait := time.Millisecond; inProcess(err) && wait <= 64*time.Millisecond; wait *= 2 {
		if err := sleep(ctx, wait); err != nil {
			return 0, fmt.Errorf("create %s %s: %w", b.what, key, err)
		}
		rev, err = b.kv.Create(ctx, key, data)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || inProcess(err) {
		return 0, fmt.Errorf("%s %s: %w", b.what, key, ErrExists)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s %s: %w", b.what, key, err)
	}
	return rev, nil
}

// inProcess reports JetStream's refusal of a conditional write to a replicated stream while
// another write of the same key is in flight on the stream's leader (10164, "wrong last
// sequence" without one): it says nothing yet of the revision. The leader acknowledges a write
// before it clears the key's in-flight mark, so a client updating a key at the revision its
// create just returned can be refused so; asked again a moment later, the leader checks the
// revision.
func inProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b bucket[T]) update(ctx context.Context, key string, v *T, rev uint64) (uint64, error) {
	data, err := b.encode(key, v)
	if err != nil {
		return 0, err
	}
	n, err := b.kv.Update(ctx, key, data, rev)
	for wait := time.Millisecond; inProcess(err) && wait <= 64*time.Millisecond; wait *= 2 {
		if err := sleep(ctx, wait); err != nil {
			return 0, fmt.Errorf("update %s %s: %w", b.what, key, err)
		}
		n, err = b.kv.Update(ctx, key, data, rev)
	}
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || inProcess(err) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, fmt.Errorf("%s %s: %w", b.what, key, ErrConflict)
		}
		return 0, fmt.Errorf("update %s %s: %w", b.what, key, err)
	}
	return n, nil
}

// put creates or replaces the record under key: last writer wins, unconditionally (a read then
// an update by revision made two writers of one node's heartbeat key conflict).
func (b bucket[T]) put(ctx context.Context, key string, v *T) (uint64, error) {
	data, err := b.encode(key, v)
	if err != nil {
		return 0, err
	}
	rev, err := b.kv.Put(ctx, key, data)
	if err != nil {
		return 0, fmt.Errorf("put %s %s: %w", b.what, key, err)
	}
	return rev, nil
}

func (b bucket[T]) delete(ctx context.Context, key string) error {
	if _, _, err := b.get(ctx, key); err != nil {
		return err
	}
	if err := b.kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("delete %s %s: %w", b.what, key, err)
	}
	return nil
}

// remove deletes key like delete and returns a revision at or after the deletion's, for a
// writer that waits for a watch to have delivered it (read-your-writes). A purge does not return
// its own revision, so this is the bucket's newest at the time: the deletion's or a later one.
func (b bucket[T]) remove(ctx context.Context, key string) (uint64, error) {
	if err := b.delete(ctx, key); err != nil {
		return 0, err
	}
	st, err := b.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete %s %s: revision: %w", b.what, key, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("delete %s %s: revision: unexpected status %T", b.what, key, st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}

// keys lists the keys matching filter (a subject filter such as "name.*"), sorted.
func (b bucket[T]) keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := b.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %ss: %w", b.what, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// list returns the records whose keys match filter, in key order.
func (b bucket[T]) list(ctx context.Context, filter string) ([]*T, error) {
	keys, err := b.keys(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(keys))
	for _, k := range keys {
		v, _, err := b.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// page returns the records of the first n keys matching filter after the key after ("": from
// the first), in key order, and whether another record follows them. Only the page's records
// (and the one that tells there is more) are read, so a page costs n reads however many
// records the bucket holds. The keys are the stream's subjects, listed in one answer (not one
// message per key as from a key lister, which cost a page 4.5 µs per record) and kept in the
// bucket's index until the stream moves on; a deleted key keeps its marker's subject: its read
// finds nothing and it is skipped.
func (b bucket[T]) page(ctx context.Context, js jetstream.JetStream, filter, after string, n int) ([]*T, bool, error) {
	prefix := "$KV." + b.kv.Bucket() + "."
	st, err := js.Stream(ctx, "KV_"+b.kv.Bucket())
	if err != nil {
		return nil, false, fmt.Errorf("list %ss: %w", b.what, err)
	}
	keys, ok := b.index.get(filter, st.CachedInfo().State.LastSeq)
	if !ok {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+filter))
		if err != nil {
			return nil, false, fmt.Errorf("list %ss: %w", b.what, err)
		}
		keys = make([]string, 0, len(info.State.Subjects))
		for subj := range info.State.Subjects {
			keys = append(keys, strings.TrimPrefix(subj, prefix))
		}
		slices.Sort(keys)
		b.index.put(filter, info.State.LastSeq, keys)
	}
	i, found := slices.BinarySearch(keys, after)
	if found {
		i++
	}
	out := make([]*T, 0, min(n, len(keys)-i))
	for _, k := range keys[i:] {
		v, _, err := b.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, false, err
		}
		if len(out) == n {
			return out, true, nil
		}
		out = append(out, v)
	}
	return out, false, nil
}

// revision is the bucket's newest revision (its stream's last sequence): a watch that has
// delivered it is current.
func (b bucket[T]) revision(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, "KV_"+b.kv.Bucket())
	if err != nil {
		return 0, fmt.Errorf("%s revision: %w", b.what, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// watchHeartbeat is how often JetStream tells a watch it is alive while nothing changes. Two
// missed heartbeats make the watch start over on another copy of the bucket: in a cluster the
// watch's consumer lives on one node holding a copy, and when that node dies the watch would
// otherwise stall until nats.go's KV watcher noticed (about 20 s, measured).
const watchHeartbeat = time.Second

// watchCreate bounds making a watch's consumer; watchInactive is how long JetStream keeps one
// nobody reads (a watch that starts over deletes its old one, if it can).
const (
	watchCreate   = 2 * time.Second
	watchInactive = time.Minute
)

// watch calls fn for every change (v nil when deleted) with its revision until ctx ends; ready is
// called once the current state has been replayed. It reads the bucket's stream through an
// ephemeral pull consumer checked for gaps (what nats.go's ordered consumer does, with a short
// heartbeat and a short deadline to make it here) that resumes after the last revision it
// delivered whenever it starts over. A
// watch that fails (its consumer cannot be made while the cluster has no leader, say) starts
// over too, after a pause, instead of leaving the cache behind for good.
func (b bucket[T]) watch(ctx context.Context, js jetstream.JetStream, ready func(), fn func(key string, rev uint64, v *T)) error {
	var last uint64 // the last revision delivered
	replayed := false
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		before := last
		err := b.watchFrom(ctx, js, &last, &replayed, ready, fn)
		if ctx.Err() != nil {
			return nil
		}
		if last > before {
			wait = 100 * time.Millisecond
		}
		level := slog.LevelWarn
		if quorumLost(js) {
			level = slog.LevelDebug // it fails until the quorum is back: the store said so once
		}
		b.log.Log(ctx, level, "watch failed; starting over", "bucket", b.what, "after_revision", last, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// watchFrom runs one consumer from after revision *last (from the current state when 0).
func (b bucket[T]) watchFrom(ctx context.Context, js jetstream.JetStream, last *uint64, replayed *bool, ready func(), fn func(key string, rev uint64, v *T)) error {
	prefix := "$KV." + b.kv.Bucket() + "."
	// What nats.go's ordered consumer makes, made here with a short deadline: JetStream places
	// the consumer on a random copy of the bucket, and one on a node cut off without a goodbye
	// (counted online for minutes) never answers. nats.go would wait 10 s for each such
	// attempt, with backoff; starting over after watchCreate tries another copy soon.
	cfg := jetstream.ConsumerConfig{FilterSubject: prefix + ">", DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: watchInactive, Replicas: 1, MemoryStorage: true}
	if *last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *last+1
	}
	cctx, cancel := context.WithTimeout(ctx, watchCreate)
	cons, err := js.CreateConsumer(cctx, "KV_"+b.kv.Bucket(), cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("watch %ss: %w", b.what, err)
	}
	defer func() {
		// Not needed (an idle consumer goes after watchInactive), but frees it at once; not
		// on shutdown, which must not wait for a cluster that may be gone.
		if ctx.Err() != nil {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, watchCreate)
		defer cancel()
		_ = js.DeleteConsumer(dctx, "KV_"+b.kv.Bucket(), cons.CachedInfo().Name)
	}()
	it, err := cons.Messages(jetstream.PullExpiry(4*watchHeartbeat), jetstream.PullHeartbeat(watchHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("watch %ss: %w", b.what, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	if info := cons.CachedInfo(); !*replayed && info != nil && info.NumPending == 0 {
		*replayed = true
		ready()
	}
	var delivered uint64 // the consumer's sequence: a gap means a message was lost on the way
	for {
		m, err := it.Next()
		if err != nil {
			return fmt.Errorf("watch %ss: %w", b.what, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			b.log.Warn("skipping a watched message without metadata", "bucket", b.what, "subject", m.Subject(), "err", err)
			continue
		}
		if meta.Sequence.Consumer != delivered+1 {
			return fmt.Errorf("watch %ss: delivery %d after %d: starting over", b.what, meta.Sequence.Consumer, delivered)
		}
		delivered = meta.Sequence.Consumer
		key, rev := strings.TrimPrefix(m.Subject(), prefix), meta.Sequence.Stream
		*last = rev
		switch op := m.Headers().Get("KV-Operation"); {
		case op == "DEL" || op == "PURGE":
			fn(key, rev, nil)
		default:
			var v T
			if err := json.Unmarshal(m.Data(), &v); err != nil {
				b.log.Warn("skipping undecodable record", "bucket", b.what, "key", key, "err", err)
			} else {
				fn(key, rev, &v)
			}
		}
		if !*replayed && meta.NumPending == 0 {
			*replayed = true
			ready()
		}
	}
}

// Records is a bucket of JSON documents whose shape belongs to the part that owns them (secrets,
// event source mapping checkpoints): the store keeps them, with the same sentinels
// (ErrNotFound, ErrExists, ErrConflict) as its own records.
type Records struct{ b bucket[json.RawMessage] }

// Get returns the document under key and its revision.
func (r Records) Get(ctx context.Context, key string) (json.RawMessage, uint64, error) {
	v, rev, err := r.b.get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return *v, rev, nil
}

// Create stores a new document (ErrExists if key is taken).
func (r Records) Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error) {
	return r.b.create(ctx, key, &doc)
}

// Update replaces the document if it is still at rev (ErrConflict otherwise).
func (r Records) Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error) {
	return r.b.update(ctx, key, &doc, rev)
}

// Put creates or replaces the document (last writer wins).
func (r Records) Put(ctx context.Context, key string, doc json.RawMessage) (uint64, error) {
	return r.b.put(ctx, key, &doc)
}

// Delete removes the document (ErrNotFound if none).
func (r Records) Delete(ctx context.Context, key string) error { return r.b.delete(ctx, key) }

// Keys lists the keys matching filter (">" for all), sorted.
func (r Records) Keys(ctx context.Context, filter string) ([]string, error) {
	return r.b.keys(ctx, filter)
}
