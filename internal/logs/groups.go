package logs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What the store offers CloudWatch Logs' view (package cwlogs): the log groups that have
// records, a retention in days per group, and the removal of a group's records older than a time.
//
// A function's records are kept under its own subject, <prefix>.<function>, while its log group
// is its own (/aws/lambda/<function>); in any other group (LoggingConfig.LogGroup, which several
// functions may share) under <prefix>.<function>.<token>, the token being the group's name in
// unpadded URL base64. So a group's records are one subject filter away (<prefix>.*.<token>, and
// <prefix>.<function> for /aws/lambda/<function>), a function's are too (<prefix>.<function> and
// <prefix>.<function>.*), the subject listing names every group, and nothing is looked up when a
// record is stored.

// DefaultGroupPrefix is the prefix of a function's own log group, /aws/lambda/<function>.
const DefaultGroupPrefix = "/aws/lambda/"

// ErrBadGroupName reports a log group name that is not [\.\-_/#A-Za-z0-9]{1,512}.
var ErrBadGroupName = errors.New(`log group name must match [\.\-_/#A-Za-z0-9]{1,512}`)

// Group is one log group's stored records, as a whole.
type Group struct {
	Name    string
	Records uint64
	First   time.Time // when its oldest record was stored
}

// maxGroupTokens bounds Store.groupTokens; past it the cache starts over.
const maxGroupTokens = 1 << 12

// recordSubject is the subject e is stored under: its function's, or in a custom log group the
// function's and the group's. Called by Run's goroutine only.
func (s *Store) recordSubject(e *entry) string {
	g := e.meta.Group
	if ownGroup(e.fn, g) || !validGroup(g) {
		return s.subject(e.fn)
	}
	tok, ok := s.groupTokens[g]
	if !ok {
		if len(s.groupTokens) >= maxGroupTokens {
			clear(s.groupTokens)
		}
		tok = groupToken(g)
		s.groupTokens[g] = tok
	}
	return s.subject(e.fn) + "." + tok
}

// ownGroup reports whether group g is fn's own: none named, or /aws/lambda/<fn>.
func ownGroup(fn, g string) bool {
	return g == "" || len(g) == len(DefaultGroupPrefix)+len(fn) && strings.HasPrefix(g, DefaultGroupPrefix) && g[len(DefaultGroupPrefix):] == fn
}

func groupToken(g string) string { return base64.RawURLEncoding.EncodeToString([]byte(g)) }

// validGroup reports whether g is a log group name CloudWatch Logs accepts.
func validGroup(g string) bool {
	if len(g) == 0 || len(g) > 512 {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-/#", c) >= 0) {
			return false
		}
	}
	return true
}

// groupFilters are the subject filters that hold group g's records: records of functions that
// name it as their custom group and, for /aws/lambda/<fn>, fn's own.
func (s *Store) groupFilters(g string) []string {
	custom := s.cfg.Subject + ".*." + groupToken(g)
	if fn, ok := strings.CutPrefix(g, DefaultGroupPrefix); ok && validName(fn) {
		return []string{s.subject(fn), custom}
	}
	return []string{custom}
}

// fnFilters are the subject filters that hold fn's records, in whichever group.
func (s *Store) fnFilters(fn string) []string {
	return []string{s.subject(fn), s.subject(fn) + ".*"}
}

// groupOfSubject is the log group and function of a record stored under subj.
func (s *Store) groupOfSubject(subj string) (group, fn string, ok bool) {
	rest, ok := strings.CutPrefix(subj, s.cfg.Subject+".")
	if !ok {
		return "", "", false
	}
	fn, tok, custom := strings.Cut(rest, ".")
	if !validName(fn) {
		return "", "", false
	}
	if !custom {
		return DefaultGroupPrefix + fn, fn, true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !validGroup(string(b)) {
		return "", "", false
	}
	return string(b), fn, true
}

// Groups returns the log groups that have records.
func (s *Store) Groups(ctx context.Context) ([]Group, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.cfg.Subject+".>"))
	if err != nil {
		return nil, fmt.Errorf("list log groups: %w", err)
	}
	count := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		if g, _, ok := s.groupOfSubject(subj); ok && n > 0 {
			count[g] += n
		}
	}
	out := make([]Group, 0, len(count))
	for g, n := range count {
		first, _, err := s.first(ctx, s.groupFilters(g))
		if err != nil {
			return nil, fmt.Errorf("list log groups: %w", err)
		}
		out = append(out, Group{Name: g, Records: n, First: first})
	}
	return out, nil
}

// first returns when the oldest record under filters was stored; ok is false when there is none.
func (s *Store) first(ctx context.Context, filters []string) (t time.Time, ok bool, err error) {
	for _, f := range filters {
		m, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, false, err
		}
		if !ok || m.Time.Before(t) {
			t, ok = m.Time.UTC(), true
		}
	}
	return t, ok, nil
}

// last returns the stream sequence of the newest record under filters, 0 when there is none.
func (s *Store) last(ctx context.Context, filters []string) (uint64, error) {
	var seq uint64
	for _, f := range filters {
		m, err := s.stream.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		seq = max(seq, m.Sequence)
	}
	return seq, nil
}

// Group returns group g (Records not counted: 1 stands for some); ok is false when g has no
// records.
func (s *Store) Group(ctx context.Context, g string) (grp Group, ok bool, err error) {
	if !validGroup(g) {
		return Group{}, false, nil
	}
	first, ok, err := s.first(ctx, s.groupFilters(g))
	if err != nil {
		return Group{}, false, fmt.Errorf("log group %s: %w", g, err)
	}
	if !ok {
		return Group{}, false, nil
	}
	return Group{Name: g, Records: 1, First: first}, true, nil
}

func retentionBucket(stream string) string { return strings.ToLower(stream) + "_retention" }

// retentionKey is g's key in the retention bucket: a function's name for its own group (as
// before custom groups), "g.<token>" for any other.
func retentionKey(g string) string {
	if fn, ok := strings.CutPrefix(g, DefaultGroupPrefix); ok && validName(fn) {
		return fn
	}
	return "g." + groupToken(g)
}

func groupOfRetentionKey(k string) (string, bool) {
	tok, custom := strings.CutPrefix(k, "g.")
	if !custom {
		return DefaultGroupPrefix + k, validName(k)
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !validGroup(string(b)) {
		return "", false
	}
	return string(b), true
}

// SetRetention keeps group g's records for days days (0: forever, the record removed).
func (s *Store) SetRetention(ctx context.Context, g string, days int) error {
	if !validGroup(g) {
		return fmt.Errorf("set retention of %q: %w", g, ErrBadGroupName)
	}
	var err error
	if days <= 0 {
		err = s.retention.Purge(ctx, retentionKey(g))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
	} else {
		_, err = s.retention.PutString(ctx, retentionKey(g), strconv.Itoa(days))
	}
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", g, err)
	}
	return nil
}

// Policy is a group's retention: Days, set (last) at Set.
type Policy struct {
	Days int
	Set  time.Time
}

// Retentions returns every log group's retention, by group name (groups without one are absent).
func (s *Store) Retentions(ctx context.Context) (map[string]Policy, error) {
	keys, err := s.retention.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list retention: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	out := map[string]Policy{}
	for k := range keys.Keys() {
		g, ok := groupOfRetentionKey(k)
		if !ok {
			continue
		}
		e, err := s.retention.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read retention of %s: %w", g, err)
		}
		if d, err := strconv.Atoi(string(e.Value())); err == nil && d > 0 {
			out[g] = Policy{Days: d, Set: e.Created().UTC()}
		}
	}
	return out, nil
}

// Retention returns group g's retention in days, 0 for none.
func (s *Store) Retention(ctx context.Context, g string) (int, error) {
	if !validGroup(g) {
		return 0, nil
	}
	e, err := s.retention.Get(ctx, retentionKey(g))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read retention of %s: %w", g, err)
	}
	d, _ := strconv.Atoi(string(e.Value()))
	return d, nil
}

// ScanGroup is Scan over log group g's records, of every function that logs to it.
func (s *Store) ScanGroup(ctx context.Context, g string, from From, visit func(Record) bool) error {
	if !validGroup(g) {
		return fmt.Errorf("read log group %q: %w", g, ErrBadGroupName)
	}
	if err := s.scanAll(ctx, s.groupFilters(g), from, visit); err != nil {
		return fmt.Errorf("read log group %s: %w", g, err)
	}
	return nil
}

// Expire removes group g's records stored before t from JetStream. Records stored meanwhile
// stay, and so do other groups' records, those of the same functions included.
func (s *Store) Expire(ctx context.Context, g string, t time.Time) error {
	if !validGroup(g) {
		return fmt.Errorf("expire log group %q: %w", g, ErrBadGroupName)
	}
	filters := s.groupFilters(g)
	last, err := s.last(ctx, filters)
	if err != nil {
		return fmt.Errorf("expire log group %s: %w", g, err)
	}
	if last == 0 {
		return nil
	}
	// The first record kept is the first stored at or after t; none (up to last): all go.
	keep := last + 1
	err = s.scan(ctx, filters, From{Time: t}, last, func(r Record) bool {
		keep = r.Seq
		return false
	})
	if err != nil {
		return fmt.Errorf("expire log group %s: %w", g, err)
	}
	for _, f := range filters {
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(f), jetstream.WithPurgeSequence(keep)); err != nil {
			return fmt.Errorf("expire log group %s: %w", g, err)
		}
	}
	return nil
}

// DeleteGroup removes group g's records and its retention: it is gone until a function logs to
// it again. Other groups' records stay.
func (s *Store) DeleteGroup(ctx context.Context, g string) error {
	if !validGroup(g) {
		return fmt.Errorf("delete log group %q: %w", g, ErrBadGroupName)
	}
	for _, f := range s.groupFilters(g) {
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(f)); err != nil {
			return fmt.Errorf("delete log group %s: %w", g, err)
		}
	}
	return s.SetRetention(ctx, g, 0)
}
