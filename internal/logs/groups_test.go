package logs

import (
	"regexp"
	"testing"
	"time"
)

// TestRecordMeta: a record appended with a Meta comes back with its environment's stream (one
// per environment, named by the day the environment's first record began) and its times; a
// record without one has none.
func TestRecordMeta(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{Linger: -1})
	run(t, s)
	start := time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC)
	m := Meta{Env: "aaaa", Version: "", Start: start, Duration: 2 * time.Second, Init: time.Second}
	s.AppendRecord("fn", m, text("fn", 1))
	m2 := m
	m2.Start, m2.Init = start.Add(time.Hour), 0 // the same environment, the next day
	s.AppendRecord("fn", m2, text("fn", 2))
	s.AppendRecord("fn", Meta{Env: "bbbb", Version: "7", Start: start}, text("fn", 3))
	s.Append("fn", text("fn", 4))
	waitStored(t, s, "fn", 4)
	recs, err := s.Read(t.Context(), "fn", 0)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^2026/12/06/\[\$LATEST\][0-9a-f]{32}$`)
	if !name.MatchString(recs[0].Stream) || recs[1].Stream != recs[0].Stream {
		t.Errorf("streams of one environment: %q, %q; want one, named by the day it began", recs[0].Stream, recs[1].Stream)
	}
	if !regexp.MustCompile(`^2026/12/06/\[7\][0-9a-f]{32}$`).MatchString(recs[2].Stream) || recs[2].Stream[len(recs[2].Stream)-32:] == recs[0].Stream[len(recs[0].Stream)-32:] {
		t.Errorf("stream of another environment: %q", recs[2].Stream)
	}
	if !recs[0].Start.Equal(start) || !recs[0].End.Equal(start.Add(2*time.Second)) || recs[0].Init != time.Second {
		t.Errorf("times = %v %v %v", recs[0].Start, recs[0].End, recs[0].Init)
	}
	if recs[3].Stream != "" || !recs[3].Start.IsZero() || recs[3].Seq <= recs[2].Seq {
		t.Errorf("record without meta: %+v", recs[3])
	}
	// Scans: from a sequence, from a time, stopping when asked.
	var seqs []uint64
	if err := s.Scan(t.Context(), "fn", From{Seq: recs[1].Seq}, func(r Record) bool { seqs = append(seqs, r.Seq); return true }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 || seqs[0] != recs[1].Seq {
		t.Errorf("scan from %d: %v", recs[1].Seq, seqs)
	}
	seqs = nil
	if err := s.Scan(t.Context(), "fn", From{Time: time.Now().Add(time.Hour)}, func(r Record) bool { seqs = append(seqs, r.Seq); return true }); err != nil || len(seqs) != 0 {
		t.Errorf("scan from an hour ahead: %v %v", seqs, err)
	}
	n := 0
	if err := s.Scan(t.Context(), "fn", From{}, func(Record) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("scan stopped by visit: %d records, %v", n, err)
	}
}

func TestAppendRecordDoesNotAllocate(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	b := text("fn", 1)
	m := Meta{Env: "aaaa", Version: "1", Start: time.Now(), Duration: time.Millisecond}
	got := testing.AllocsPerRun(1000, func() {
		s.AppendRecord("fn", m, b)
		s.recycle(<-s.queue) // what Run does once the record is acknowledged
	})
	if got != 0 {
		t.Errorf("AppendRecord allocs/op = %v, want 0", got)
	}
}

// TestGroupsRetentionExpire: groups are the functions with records; a retention is kept per
// function; Expire removes what was stored before a time and nothing after; Delete removes both.
func TestGroupsRetentionExpire(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{Linger: -1})
	run(t, s)
	s.Append("a", text("a", 1))
	s.Append("b", text("b", 1))
	waitStored(t, s, "a", 1)
	waitStored(t, s, "b", 1)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	s.Append("a", text("a", 2))
	waitStored(t, s, "a", 2)
	groups, err := s.Groups(t.Context())
	if err != nil || len(groups) != 2 {
		t.Fatalf("Groups = %+v, %v", groups, err)
	}
	if _, ok, err := s.Group(t.Context(), "c"); ok || err != nil {
		t.Errorf("Group(c) = %v, %v; want none", ok, err)
	}
	if err := s.SetRetention(t.Context(), "a", 3); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Retention(t.Context(), "a"); d != 3 || err != nil {
		t.Errorf("Retention(a) = %d, %v", d, err)
	}
	if all, err := s.Retentions(t.Context()); err != nil || len(all) != 1 || all["a"].Days != 3 || all["a"].Set.IsZero() {
		t.Errorf("Retentions = %v, %v", all, err)
	}
	if err := s.Expire(t.Context(), "a", mid); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.Read(t.Context(), "a", 0)
	if got := recordTexts(t, "a", recs); len(got) != 1 || got[0] != string(text("a", 2)) {
		t.Errorf("after Expire: %q", got)
	}
	if err := s.Expire(t.Context(), "b", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if recs, _ := s.Read(t.Context(), "b", 0); len(recs) != 0 {
		t.Errorf("b after expiring everything: %d records", len(recs))
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Retention(t.Context(), "a"); d != 0 {
		t.Errorf("retention after Delete: %d", d)
	}
	if groups, err := s.Groups(t.Context()); err != nil || len(groups) != 0 {
		t.Errorf("Groups after Delete and Expire = %+v, %v", groups, err)
	}
}
