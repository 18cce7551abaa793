package logs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseReport reads invocations' reports back from their log records, in both log formats.
func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want ReadReport
		ok   bool
	}{
		{name: "text cold error",
			text: "init line\nSTART RequestId: 11111111-2222 Version: $LATEST\nhello\nEND RequestId: 11111111-2222\n" +
				"REPORT RequestId: 11111111-2222\tDuration: 976.25 ms\tBilled Duration: 977 ms\tMemory Size: 128 MB\tMax Memory Used: 90 MB\tInit Duration: 430.47 ms\tStatus: error\tError Type: Runtime.ExitError\t\n",
			want: ReadReport{RequestID: "11111111-2222", Version: "$LATEST", DurationMs: 976.25, InitDurationMs: 430.47, Status: "error", ErrorType: "Runtime.ExitError", Cold: true},
			ok:   true},
		{name: "text warm success",
			text: "START RequestId: abc Version: 3\nEND RequestId: abc\nREPORT RequestId: abc\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t\n",
			want: ReadReport{RequestID: "abc", Version: "3", DurationMs: 1.5, Status: "success"}, ok: true},
		{name: "json",
			text: `{"time":"2026-12-07T10:00:00.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST"}}` + "\n" +
				`{"timestamp":"2026-12-07T10:00:00.001Z","level":"INFO","requestId":"r1","message":"hi"}` + "\n" +
				`{"time":"2026-12-07T10:00:00.002Z","type":"platform.report","record":{"requestId":"r1","metrics":{"durationMs":2.25,"billedDurationMs":3,"memorySizeMB":128,"maxMemoryUsedMB":30,"initDurationMs":100.5},"status":"timeout"}}` + "\n",
			want: ReadReport{RequestID: "r1", Version: "$LATEST", DurationMs: 2.25, InitDurationMs: 100.5, Status: "timeout", Cold: true}, ok: true},
		{name: "json cold, with the INIT's events",
			text: `{"time":"2026-12-07T09:59:59.900Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"python3.12","functionName":"f","functionVersion":"$LATEST"}}` + "\n" +
				"init output\n" +
				`{"time":"2026-12-07T10:00:00.000Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"success","metrics":{"durationMs":99.5}}}` + "\n" +
				`{"time":"2026-12-07T10:00:00.000Z","type":"platform.start","record":{"requestId":"r2","version":"7"}}` + "\n" +
				`{"time":"2026-12-07T10:00:00.002Z","type":"platform.report","record":{"requestId":"r2","metrics":{"durationMs":2,"billedDurationMs":2,"memorySizeMB":128,"maxMemoryUsedMB":30,"initDurationMs":99.5},"status":"success"}}` + "\n",
			want: ReadReport{RequestID: "r2", Version: "7", DurationMs: 2, InitDurationMs: 99.5, Status: "success", Cold: true}, ok: true},
		{name: "json, INIT events only (a system log level's cut, or a record cut short)",
			text: `{"time":"2026-12-07T10:00:00.000Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"success","metrics":{"durationMs":99.5}}}` + "\n",
			ok:   false},
		{name: "text cold, INIT under 5 µs",
			text: "START RequestId: q Version: 1\nEND RequestId: q\nREPORT RequestId: q\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 0.00 ms\t\n",
			want: ReadReport{RequestID: "q", Version: "1", DurationMs: 1, Status: "success", Cold: true}, ok: true},
		{name: "no report", text: "START RequestId: x Version: $LATEST\ncut short\n", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseReport([]byte(tc.text))
			if ok != tc.ok {
				t.Fatalf("ok = %v; want %v", ok, tc.ok)
			}
			if ok {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("ParseReport (-want +got):\n%s", diff)
				}
			}
		})
	}
}
