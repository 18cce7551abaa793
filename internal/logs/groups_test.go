package logs

import (
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
// group; Expire removes what was stored before a time and nothing after; DeleteGroup removes both.
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
	if _, ok, err := s.Group(t.Context(), "/aws/lambda/c"); ok || err != nil {
		t.Errorf("Group(c) = %v, %v; want none", ok, err)
	}
	if err := s.SetRetention(t.Context(), "/aws/lambda/a", 3); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Retention(t.Context(), "/aws/lambda/a"); d != 3 || err != nil {
		t.Errorf("Retention(a) = %d, %v", d, err)
	}
	if all, err := s.Retentions(t.Context()); err != nil || len(all) != 1 || all["/aws/lambda/a"].Days != 3 || all["/aws/lambda/a"].Set.IsZero() {
		t.Errorf("Retentions = %v, %v", all, err)
	}
	if err := s.Expire(t.Context(), "/aws/lambda/a", mid); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.Read(t.Context(), "a", 0)
	if got := recordTexts(t, "a", recs); len(got) != 1 || got[0] != string(text("a", 2)) {
		t.Errorf("after Expire: %q", got)
	}
	if err := s.Expire(t.Context(), "/aws/lambda/b", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if recs, _ := s.Read(t.Context(), "b", 0); len(recs) != 0 {
		t.Errorf("b after expiring everything: %d records", len(recs))
	}
	if err := s.DeleteGroup(t.Context(), "/aws/lambda/a"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Retention(t.Context(), "/aws/lambda/a"); d != 0 {
		t.Errorf("retention after Delete: %d", d)
	}
	if groups, err := s.Groups(t.Context()); err != nil || len(groups) != 0 {
		t.Errorf("Groups after Delete and Expire = %+v, %v", groups, err)
	}
}

// TestCustomGroups: a record in a custom log group is that group's, whichever function wrote it,
// and not its function's own group's; a function still reads all of its records; retention,
// expiry and deletion of one group leave the others' records alone.
func TestCustomGroups(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{Linger: -1})
	run(t, s)
	const shared = "/shared/app.v1#x"
	start := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	s.AppendRecord("a", Meta{Env: "e1", Start: start, Group: "/aws/lambda/a"}, text("a", 1)) // its own, named
	s.AppendRecord("a", Meta{Env: "e2", Start: start, Group: shared}, text("a", 2))
	s.AppendRecord("b", Meta{Env: "e3", Version: "3", Start: start, Group: shared}, text("b", 1))
	s.AppendRecord("c", Meta{Env: "e4", Start: start, Group: "/aws/lambda/a"}, text("c", 1)) // another's default name
	s.Append("d", text("d", 1))
	waitStored(t, s, "a", 2)
	waitStored(t, s, "b", 1)
	waitStored(t, s, "c", 1)
	waitStored(t, s, "d", 1)

	groups, err := s.Groups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, g := range groups {
		got[g.Name] = g.Records
		if g.First.IsZero() {
			t.Errorf("group %s has no first time", g.Name)
		}
	}
	want := map[string]uint64{"/aws/lambda/a": 2, shared: 2, "/aws/lambda/d": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
	groupTexts := func(g string) (out []string) {
		t.Helper()
		if err := s.ScanGroup(t.Context(), g, From{}, func(r Record) bool {
			if r.Group != g {
				t.Errorf("record of %s in group %s says group %q", r.Function, g, r.Group)
			}
			out = append(out, string(r.Text))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if diff := cmp.Diff([]string{string(text("a", 2)), string(text("b", 1))}, groupTexts(shared)); diff != "" {
		t.Errorf("shared group (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{string(text("a", 1)), string(text("c", 1))}, groupTexts("/aws/lambda/a")); diff != "" {
		t.Errorf("a's own group (-want +got):\n%s", diff)
	}
	if _, ok, err := s.Group(t.Context(), "/aws/lambda/b"); ok || err != nil {
		t.Errorf("b logs only to the shared group, yet /aws/lambda/b exists: %v %v", ok, err)
	}
	var streams []string
	_ = s.ScanGroup(t.Context(), shared, From{}, func(r Record) bool { streams = append(streams, r.Stream); return true })
	custom := regexp.MustCompile(`^2026/12/07/b\[3\]\[[0-9a-f]{32}\]$`)
	if len(streams) != 2 || !custom.MatchString(streams[1]) {
		t.Errorf("streams in the shared group: %q, want b's named YYYY/MM/DD/b[3][<32 hex>]", streams)
	}
	// A function reads all its records, whichever group holds them.
	recs, err := s.Read(t.Context(), "a", 0)
	if err != nil || len(recs) != 2 {
		t.Errorf("Read(a) = %d records, %v; want 2", len(recs), err)
	}

	if err := s.SetRetention(t.Context(), shared, 5); err != nil {
		t.Fatal(err)
	}
	if pols, err := s.Retentions(t.Context()); err != nil || len(pols) != 1 || pols[shared].Days != 5 {
		t.Errorf("Retentions = %v, %v", pols, err)
	}
	if d, err := s.Retention(t.Context(), "/aws/lambda/a"); d != 0 || err != nil {
		t.Errorf("a's own group took the shared group's retention: %d %v", d, err)
	}
	if err := s.Expire(t.Context(), shared, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := groupTexts(shared); len(got) != 0 {
		t.Errorf("shared group after expiring all: %q", got)
	}
	if got := groupTexts("/aws/lambda/a"); len(got) != 2 {
		t.Errorf("a's own group after expiring the shared one: %q", got)
	}
	s.AppendRecord("b", Meta{Env: "e3", Start: start, Group: shared}, text("b", 2))
	waitStored(t, s, "b", 1)
	if err := s.DeleteGroup(t.Context(), shared); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Group(t.Context(), shared); ok {
		t.Error("shared group still has records after DeleteGroup")
	}
	if d, _ := s.Retention(t.Context(), shared); d != 0 {
		t.Errorf("shared group's retention after DeleteGroup: %d", d)
	}
	if got := groupTexts("/aws/lambda/a"); len(got) != 2 {
		t.Errorf("a's own group after deleting the shared one: %q", got)
	}
}
