package logs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What the store offers CloudWatch Logs' view (package cwlogs): which functions have records,
// a retention in days per function, and the removal of records older than a time.

// Group is one function's stored records, as a whole.
type Group struct {
	Function string
	Records  uint64
	First    time.Time // when its oldest record was stored
}

// Groups returns the functions that have records, by name.
func (s *Store) Groups(ctx context.Context) ([]Group, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.cfg.Subject+".>"))
	if err != nil {
		return nil, fmt.Errorf("list log groups: %w", err)
	}
	out := make([]Group, 0, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		fn, ok := strings.CutPrefix(subj, s.cfg.Subject+".")
		if !ok || n == 0 || !validName(fn) {
			continue
		}
		out = append(out, Group{Function: fn, Records: n})
	}
	for i := range out {
		if m, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(s.subject(out[i].Function))); err == nil {
			out[i].First = m.Time.UTC()
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("list log groups: %w", err)
		}
	}
	return out, nil
}

// Group returns fn's group (Records not counted: 1 stands for some); ok is false when fn has
// no records.
func (s *Store) Group(ctx context.Context, fn string) (g Group, ok bool, err error) {
	if !validName(fn) {
		return Group{}, false, nil
	}
	m, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(s.subject(fn)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Group{}, false, nil
	}
	if err != nil {
		return Group{}, false, fmt.Errorf("log group of %s: %w", fn, err)
	}
	return Group{Function: fn, Records: 1, First: m.Time.UTC()}, true, nil
}

func retentionBucket(stream string) string { return strings.ToLower(stream) + "_retention" }

// SetRetention keeps fn's records for days days (0: forever, the record removed).
func (s *Store) SetRetention(ctx context.Context, fn string, days int) error {
	if !validName(fn) {
		return fmt.Errorf("set retention of %q: %w", fn, ErrBadFunctionName)
	}
	var err error
	if days <= 0 {
		err = s.retention.Purge(ctx, fn)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
	} else {
		_, err = s.retention.PutString(ctx, fn, strconv.Itoa(days))
	}
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", fn, err)
	}
	return nil
}

// Policy is a function's retention: Days, set (last) at Set.
type Policy struct {
	Days int
	Set  time.Time
}

// Retentions returns every function's retention (functions without one are absent).
func (s *Store) Retentions(ctx context.Context) (map[string]Policy, error) {
	keys, err := s.retention.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list retention: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	out := map[string]Policy{}
	for k := range keys.Keys() {
		e, err := s.retention.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read retention of %s: %w", k, err)
		}
		if d, err := strconv.Atoi(string(e.Value())); err == nil && d > 0 {
			out[k] = Policy{Days: d, Set: e.Created().UTC()}
		}
	}
	return out, nil
}

// Retention returns fn's retention in days, 0 for none.
func (s *Store) Retention(ctx context.Context, fn string) (int, error) {
	if !validName(fn) {
		return 0, nil
	}
	e, err := s.retention.Get(ctx, fn)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read retention of %s: %w", fn, err)
	}
	d, _ := strconv.Atoi(string(e.Value()))
	return d, nil
}

// Expire removes fn's records stored before t from JetStream. Records stored meanwhile stay.
func (s *Store) Expire(ctx context.Context, fn string, t time.Time) error {
	if !validName(fn) {
		return fmt.Errorf("expire logs of %q: %w", fn, ErrBadFunctionName)
	}
	last, err := s.stream.GetLastMsgForSubject(ctx, s.subject(fn))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("expire logs of %s: %w", fn, err)
	}
	// The first record kept is the first stored at or after t; none (up to last): all go.
	keep := last.Sequence + 1
	err = s.scan(ctx, fn, From{Time: t}, last.Sequence, func(r Record) bool {
		keep = r.Seq
		return false
	})
	if err != nil {
		return fmt.Errorf("expire logs of %s: %w", fn, err)
	}
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subject(fn)), jetstream.WithPurgeSequence(keep)); err != nil {
		return fmt.Errorf("expire logs of %s: %w", fn, err)
	}
	return nil
}

// Delete removes fn's records and its retention: its log group is gone until it logs again.
func (s *Store) Delete(ctx context.Context, fn string) error {
	if err := s.Purge(ctx, fn); err != nil {
		return err
	}
	return s.SetRetention(ctx, fn, 0)
}
