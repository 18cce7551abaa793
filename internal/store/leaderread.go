package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderReadKV reads keys from the stream's leader instead of by direct get.
//
// nats.go reads a KV key by direct get, which every copy of a replicated stream may answer, and
// NATS prefers a subscriber on the local server: a copy that has not yet applied the latest
// writes answers with what it has. So a function created through a node could be "not found"
// through that same node a moment later (a client creating a function, then setting its
// concurrency at once), and a loaded cluster showed it. A write is acknowledged once the leader
// has it, so reading from the leader sees every write that has returned. It costs a hop to the
// leader's node on reads of the API, never on an invoke's path (those read the in-memory views).
//
// With no leader to ask (the quorum lost, or the stream between leaders for longer than
// leaderReadWait) the read falls back to this node's copy: possibly stale, as of the loss, but
// an answer.
type leaderReadKV struct {
	jetstream.KeyValue
	s       *Store
	subject string // the stream's message-get API subject
	prefix  string // the bucket's key subject prefix, "$KV.<bucket>."
}

// leaderReadWait bounds one read from the leader: an answer takes a route's round trip; none
// within it means there is no leader to answer for now.
const leaderReadWait = 2 * time.Second

// errNoLeaderAnswer: no leader answered the read in time.
var errNoLeaderAnswer = errors.New("no leader answered")

func (s *Store) leaderReadKV(kv jetstream.KeyValue) jetstream.KeyValue {
	if s.replicas <= 1 { // one copy: the leader answers every direct get
		return kv
	}
	b := kv.Bucket()
	return leaderReadKV{KeyValue: kv, s: s, subject: "$JS.API.STREAM.MSG.GET.KV_" + b, prefix: "$KV." + b + "."}
}

func (k leaderReadKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.s.refuse() != nil {
		return k.KeyValue.Get(ctx, key)
	}
	e, err := k.fromLeader(ctx, key)
	if errors.Is(err, errNoLeaderAnswer) && ctx.Err() == nil {
		k.s.log.Debug("a store read got no answer from the stream's leader; reading this node's copy", "bucket", k.Bucket(), "key", key)
		return k.KeyValue.Get(ctx, key)
	}
	if errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, jetstream.ErrKeyNotFound
	}
	return e, err
}

// Create makes a deleted key anew also when this node's copy is behind the deletion: nats.go's
// Create, refused because the key has a history, reads it by direct get to see whether it was
// deleted, and a copy that has not applied the deletion says the key exists (a function
// deleted through a node could not be created again through it at once).
func (k leaderReadKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := k.KeyValue.Create(ctx, key, value, opts...)
	if !errors.Is(err, jetstream.ErrKeyExists) || len(opts) > 0 || k.s.refuse() != nil {
		return rev, err
	}
	e, gerr := k.fromLeader(ctx, key)
	if !errors.Is(gerr, jetstream.ErrKeyDeleted) {
		return rev, err
	}
	rev, err = k.KeyValue.Update(ctx, key, value, e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) { // made again meanwhile
		return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyExists)
	}
	return rev, err
}

// ListKeysFiltered lists the live keys as the leader has them: nats.go lists with an ordered
// consumer, which JetStream places on any copy of the stream (nats-server shuffles the peers for
// an R1 consumer), and a copy behind the last writes left a key just created out of the list
// (ListAliases right after CreateAlias, through the same node). The leader gives the keys' subjects
// (its stream info), and each key is read from it to leave the deleted ones out.
func (k leaderReadKV) ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error) {
	if k.s.refuse() != nil {
		return k.KeyValue.ListKeysFiltered(ctx, filters...)
	}
	keys, err := k.liveKeys(ctx, filters)
	if errors.Is(err, errNoLeaderAnswer) && ctx.Err() == nil {
		k.s.log.Debug("a store listing got no answer from the stream's leader; listing this node's copy", "bucket", k.Bucket())
		return k.KeyValue.ListKeysFiltered(ctx, filters...)
	}
	if err != nil {
		return nil, err
	}
	ch := make(chan string, len(keys))
	for _, key := range keys {
		ch <- key
	}
	close(ch)
	return keyList(ch), nil
}

// listReads bounds the reads of one listing in flight at once.
const listReads = 8

func (k leaderReadKV) liveKeys(ctx context.Context, filters []string) ([]string, error) {
	if len(filters) == 0 {
		filters = []string{">"}
	}
	rctx, cancel := context.WithTimeout(ctx, leaderReadWait)
	defer cancel()
	st, err := k.s.js.Stream(rctx, "KV_"+k.Bucket())
	if err == nil {
		var subjects []string
		for _, f := range filters {
			var info *jetstream.StreamInfo
			if info, err = st.Info(rctx, jetstream.WithSubjectFilter(k.prefix+f)); err != nil {
				break
			}
			for subj := range info.State.Subjects {
				subjects = append(subjects, subj)
			}
		}
		if err == nil {
			return k.live(ctx, subjects)
		}
	}
	if rctx.Err() != nil || errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: %w", errNoLeaderAnswer, err)
	}
	return nil, err
}

// live reads the keys of subjects from the leader and keeps those not deleted.
func (k leaderReadKV) live(ctx context.Context, subjects []string) ([]string, error) {
	slices.Sort(subjects)
	subjects = slices.Compact(subjects)
	alive := make([]bool, len(subjects))
	errs := make([]error, len(subjects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, listReads)
	for i, subj := range subjects {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := k.fromLeader(ctx, strings.TrimPrefix(subj, k.prefix))
			switch {
			case err == nil:
				alive[i] = true
			case !errors.Is(err, jetstream.ErrKeyDeleted) && !errors.Is(err, jetstream.ErrKeyNotFound):
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(subjects))
	for i, subj := range subjects {
		if alive[i] {
			keys = append(keys, strings.TrimPrefix(subj, k.prefix))
		}
	}
	return keys, nil
}

// keyList is a listing already complete.
type keyList chan string

func (l keyList) Keys() <-chan string { return l }
func (l keyList) Stop() error         { return nil }

// fromLeader asks the stream's leader for the key's last message and reads it as nats.go's KV
// reads a direct get's: a deleted key is ErrKeyDeleted with the deletion's entry.
func (k leaderReadKV) fromLeader(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !validKey(key) {
		return nil, jetstream.ErrInvalidKey
	}
	m, err := lastFromLeader(ctx, k.s.nc, k.subject, k.prefix+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from the leader: %w", key, err)
	}
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, fmt.Errorf("decode the headers of %s: %w", key, err)
		}
		// A delete or purge marker (or a server's marker) is the key's end.
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return kvEntry{bucket: k.Bucket(), key: key, revision: m.Sequence, created: m.Time, op: jetstream.KeyValueDelete}, jetstream.ErrKeyDeleted
		}
	}
	return kvEntry{bucket: k.Bucket(), key: key, value: m.Data, revision: m.Sequence, created: m.Time}, nil
}

// leaderMsg is a stream's message as the JetStream API's message get returns it.
type leaderMsg struct {
	Sequence uint64    `json:"seq"`
	Header   []byte    `json:"hdrs"`
	Data     []byte    `json:"data"`
	Time     time.Time `json:"time"`
}

// lastFromLeader asks a stream's leader (getSubject is the stream's message-get API subject,
// which only the leader answers) for the last message on subject: jetstream.ErrMsgNotFound if
// there is none, errNoLeaderAnswer if no leader answered within leaderReadWait.
func lastFromLeader(ctx context.Context, nc *nats.Conn, getSubject, subject string) (*leaderMsg, error) {
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, leaderReadWait)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, getSubject, req)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: %w", errNoLeaderAnswer, err)
	}
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *leaderMsg          `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("decode the leader's answer: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, resp.Error
	}
	if resp.Message == nil {
		return nil, errors.New("the leader's answer holds no message")
	}
	return resp.Message, nil
}

// kvEntry is a key's value as read from the leader.
type kvEntry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e kvEntry) Bucket() string                  { return e.bucket }
func (e kvEntry) Key() string                     { return e.key }
func (e kvEntry) Value() []byte                   { return e.value }
func (e kvEntry) Revision() uint64                { return e.revision }
func (e kvEntry) Created() time.Time              { return e.created }
func (e kvEntry) Delta() uint64                   { return 0 }
func (e kvEntry) Operation() jetstream.KeyValueOp { return e.op }

// validKey is nats.go's rule for a KV key (its check is unexported). It matters here: a key with
// a wildcard would ask the leader for the last message of many keys.
func validKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return false
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-/_=.", c)) {
			return false
		}
	}
	return true
}
