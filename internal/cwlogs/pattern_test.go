package cwlogs

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flint-run/flint/internal/logs"
)

// The examples of AWS's "Filter pattern syntax for metric filters, subscription filters, filter
// log events, and Live Tail" (and its older "Filter and Pattern Syntax"), each pattern with the
// messages it matches among the documented log events.
func TestPatternAWSExamples(t *testing.T) {
	unstructured := []string{
		"[ERROR 400] BAD REQUEST",
		"[ERROR 401] UNAUTHORIZED REQUEST",
		"[ERROR 419] MISSING ARGUMENTS",
		"[ERROR 420] INVALID ARGUMENTS",
		"[ERROR 500] INTERNAL SERVER ERROR",
		"[INFO 200] OK",
	}
	orExamples := []string{"ERROR WARN message", "ERROR message", "WARN message"}
	exiting := []string{"[ERROR] A fatal exception has occurred", "Exiting with ERRORCODE: -1"}
	multi := []string{"[ERROR] Caught IllegalArgumentException", "[ERROR] Unhandled Exception", "[WARN] Failed to process the request",
		"[ERROR] Unable to continue: Failed to process the request", "[INFO] fine"}
	trail := `{"eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111", "arrayKey": ["value", "another value"],
		"objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "SomeObject": null, "ThisFlag": true}`
	users := `{"user": {"id": 1, "email": "John.Stiles@example.com"},
		"users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
		"actions": ["GET", "PUT", "DELETE"], "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]}`
	access := []string{
		`127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534`,
		`127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324`,
		`127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355`,
	}
	access404 := []string{
		`127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`,
		`127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.gif HTTP/1.0" 404 1534`,
	}
	numbers := `{"latency": 500, "numbers": [9.5, 2], "processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}], "errorCode": 400}`

	for _, tc := range []struct {
		pattern string
		events  []string
		want    []string
	}{
		{"ERROR", unstructured, unstructured[:5]},
		{"ERROR ARGUMENTS", unstructured, unstructured[2:4]},
		{"?ERROR ?ARGUMENTS", unstructured, unstructured[:5]},
		{"?OK ?ARGUMENTS", unstructured, []string{unstructured[2], unstructured[3], unstructured[5]}},
		{`"INTERNAL SERVER ERROR"`, unstructured, unstructured[4:5]},
		{"ERROR -ARGUMENTS", unstructured, []string{unstructured[0], unstructured[1], unstructured[4]}},
		{"", unstructured, unstructured},
		{`" "`, unstructured, unstructured},
		{`"ERROR"`, exiting, exiting},
		{`"ERROR" - "Exiting"`, exiting, exiting[:1]},
		{"ERROR Exception", multi, multi[:2]},
		{"Failed to process the request", multi, multi[2:4]},
		{"ERROR", orExamples, orExamples[:2]},
		{"?ERROR ?WARN", orExamples, orExamples},
		{"ERROR WARN", orExamples, orExamples[:1]},
		{"ERROR -WARN", orExamples, orExamples[1:2]},
		{"%AUTHORIZED%", unstructured, unstructured[1:2]},
		{"%ERROR 4[0-9]{2}%", unstructured, unstructured[:4]},
		{`{$.foo = bar}`, []string{`{"foo": "bar"}`, `{"foo": "baz"}`}, []string{`{"foo": "bar"}`}},
		{`{$.foo = baz }`, []string{`{"foo": "bar"}`, `{"foo": "baz"}`}, []string{`{"foo": "baz"}`}},
		{`{$.foo = bar || $.foo = baz }`, []string{`{"foo": "bar"}`, `{"foo": "baz"}`, `{"foo": "qux"}`}, []string{`{"foo": "bar"}`, `{"foo": "baz"}`}},
		{`{ $.eventType = "UpdateTrail" }`, []string{trail}, []string{trail}},
		{`{ $.sourceIPAddress != 123.123.* }`, []string{trail}, []string{trail}},
		{`{ $.sourceIPAddress = 111.111.* }`, []string{trail}, []string{trail}},
		{`{ $.eventType = *Trail }`, []string{trail}, []string{trail}},
		{`{ $.eventType = Update* }`, []string{trail}, []string{trail}},
		{`{ $.eventType = Up*Trail }`, []string{trail}, nil}, // only the string "Up*Trail"
		{`{ $.arrayKey[0] = "value" }`, []string{trail}, []string{trail}},
		{`{ $.objectList[1].id = 2 }`, []string{trail}, []string{trail}},
		{`{ $.SomeObject IS NULL }`, []string{trail}, []string{trail}},
		{`{ $.SomeOtherObject NOT EXISTS }`, []string{trail}, []string{trail}},
		{`{ $.ThisFlag IS TRUE }`, []string{trail}, []string{trail}},
		{`{ $.ThisFlag IS FALSE }`, []string{trail}, nil},
		{`{ $.objectList = 1 }`, []string{trail}, nil}, // an array is not a value node
		{`{ $.objectList != 1 }`, []string{trail}, nil},
		{`{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }`, []string{users}, []string{users}},
		{`{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, []string{users}, nil},
		{`{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, []string{users}, []string{users}},
		{`{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, []string{users}, nil},
		{`{ $.coordinates[1][2] = 6 }`, []string{users}, []string{users}},
		{`{ $.latency >= 500 }`, []string{numbers}, []string{numbers}},
		{`{ $.latency > 500 }`, []string{numbers}, nil},
		{`{ $.numbers[0] < 10e3 }`, []string{numbers}, []string{numbers}},
		{`{ $.numbers[0] < 10e-3 }`, []string{numbers}, nil},
		{`{ $.processes[4].averageRuntime <= 55.5 }`, []string{numbers}, []string{numbers}},
		{`{ $.errorCode = 400 }`, []string{numbers}, []string{numbers}},
		{`{ $.errorCode != 500 }`, []string{numbers}, []string{numbers}},
		{`{ $.latency > +100 }`, []string{numbers}, []string{numbers}},
		{`{ $.latency = * }`, []string{numbers, `{"other": 1}`}, []string{numbers}},
		// Space-delimited: AWS's access-log examples, and its OR examples.
		{`[ip, user, username, timestamp, request, status_code, bytes]`, access, access},
		{`[..., status_code, bytes]`, access, access},
		{`[ip, user, ..., status_code, bytes]`, access, access},
		{`[ip, user, ...]`, access, access},
		{`[ip, user, username, timestamp, request, status_code, bytes > 1000]`, access, access},
		{`[ip, user, username, timestamp, request, status_code, bytes > 5000]`, access, access[1:2]},
		{`[ip, user, username, timestamp, request, status_code = 200, bytes]`, access, []string{access[0], access[2]}},
		{`[ip, user, username, timestamp, request, status_code = 5*, bytes]`, access, access[1:2]},
		{`[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]`, access404, access404[:1]},
		{`[ip, user, username, timestamp, request, status_code = 2* && bytes > 4000]`, access, access[2:3]},
		{`[ip, user, username, timestamp, request, status_code = 2* && status_code != 200, bytes]`, access, nil},
		{`[..., request=*.html*, status_code=4*,]`, access404, access404[:1]},
		{`[w1=ERROR, w2]`, orExamples[1:], orExamples[1:2]},
		{`[w1=ERROR || w1=WARN, w2]`, orExamples, orExamples[1:]},
		{`[w1, w2, w3]`, orExamples, orExamples[:1]},
		// A JSON pattern matches only messages that are JSON; Lambda's lines end in "\n".
		{`{ $.level = "ERROR" }`, []string{`{"level": "ERROR", "msg": "a"}` + "\n", `{"level": "INFO"}` + "\n", `level ERROR` + "\n", "START RequestId: x\n"},
			[]string{`{"level": "ERROR", "msg": "a"}` + "\n"}},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := ParsePattern(tc.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
			}
			var got []string
			for _, e := range tc.events {
				if p.Match(e) {
					got = append(got, e)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pattern %s matched (-want +got):\n%s", tc.pattern, diff)
			}
		})
	}
}

func TestPatternRejects(t *testing.T) {
	for _, p := range []string{
		`"unterminated`,
		`ERROR -`,
		`?`,
		`{ $.level = "ERROR" `,
		`{ level = "ERROR" }`,
		`{ $.level "ERROR" }`,
		`{ $.level = }`,
		`{ $.latency > fast }`,
		`{ ($.a = 1 }`,
		`{ $.a = 1 && }`,
		`{ $.a[x] = 1 }`,
		`{ $ = 1 }`,
		`%(a|b)%`,
		`%something!%`,
		`[ip, user`,
		`[ip, bytes > many]`,
		`[ip, = 3]`,
	} {
		if _, err := ParsePattern(p); !errors.Is(err, errPattern) {
			t.Errorf("ParsePattern(%q) = %v, want an invalid pattern", p, err)
		}
	}
}

// TestEventsOfRecord: a record becomes one event per line, in its environment's stream, each
// with its own time: INIT's output at the start of INIT, START at the start, the function's
// lines at the time they carry, END and REPORT at the end.
func TestEventsOfRecord(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	end := start.Add(900 * time.Millisecond)
	stored := end.Add(5 * time.Millisecond)
	text := "init line\n" +
		"START RequestId: r1 Version: $LATEST\n" +
		"plain line\n" +
		"2026-12-07T10:00:00.300Z\tr1\tINFO\tnode line\n" +
		"\n" +
		"[ERROR]\t2026-12-07T10:00:00.500Z\tr1\tpython logging line\n" +
		"2026-12-07T11:00:00.000Z\tr1\tINFO\ta clock far ahead\n" +
		"END RequestId: r1\n" +
		"REPORT RequestId: r1\tDuration: 900.00 ms\t\n"
	r := logs.Record{Time: stored, Function: "f", Text: []byte(text), Seq: 7, Stream: "2026/12/07/[$LATEST]abc",
		Start: start, End: end, Init: 200 * time.Millisecond}
	type ev struct {
		Ms   int64
		Line int
		Msg  string
	}
	var got []ev
	for _, e := range events(r) {
		if e.stream != r.Stream || e.ingest != stored.UnixMilli() || e.pos.seq != 7 {
			t.Errorf("event %+v: wrong stream, ingestion time or sequence", e)
		}
		got = append(got, ev{e.ts - start.UnixMilli(), e.pos.line, e.msg})
	}
	want := []ev{
		{-200, 0, "init line\n"},
		{0, 1, "START RequestId: r1 Version: $LATEST\n"},
		{0, 2, "plain line\n"},
		{300, 3, "2026-12-07T10:00:00.300Z\tr1\tINFO\tnode line\n"},
		{500, 5, "[ERROR]\t2026-12-07T10:00:00.500Z\tr1\tpython logging line\n"},
		{900, 6, "2026-12-07T11:00:00.000Z\tr1\tINFO\ta clock far ahead\n"},
		{900, 7, "END RequestId: r1\n"},
		{900, 8, "REPORT RequestId: r1\tDuration: 900.00 ms\t\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// Without a Meta (a record stored before records carried one): the stored time throughout.
	old := events(logs.Record{Time: stored, Text: []byte("START RequestId: r0 Version: $LATEST\nhi\n"), Seq: 3, Function: "f"})
	if len(old) != 2 || old[0].ts != stored.UnixMilli() || old[1].ts != stored.UnixMilli() || old[0].stream != old[1].stream ||
		len(old[0].stream) != len("2026/12/07/[$LATEST]")+32 {
		t.Errorf("events of a record without meta: %+v", old)
	}
	// The JSON format's platform events mark the same moments.
	init := logs.Init{Type: "on-demand", Duration: 200 * time.Millisecond}
	var jb []byte
	jb = logs.AppendInitStartJSON(jb, start.Add(-init.Duration), init)
	jb = append(jb, "init line\n"...)
	jb = logs.AppendInitReportJSON(jb, start, init)
	jb = logs.AppendStartJSON(jb, start, "r1", "")
	jb = append(jb, "plain line\n"...)
	jb = logs.AppendReportJSON(jb, end, logs.Report{RequestID: "r1", Duration: 900 * time.Millisecond})
	r.Text = jb
	var times []int64
	for _, e := range events(r) {
		times = append(times, e.ts-start.UnixMilli())
	}
	if diff := cmp.Diff([]int64{-200, -200, 0, 0, 0, 900}, times); diff != "" {
		t.Errorf("JSON events' times (-want +got):\n%s", diff)
	}
	if a, b := (pos{3, 1}).id(), (pos{3, 2}).id(); len(a) != 56 || a >= b {
		t.Errorf("event ids %s, %s: want 56 digits, ordered", a, b)
	}
}
