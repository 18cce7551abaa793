package logs

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const reqID = "12b3cae7-5f4e-415e-93e6-416b8f8b66e6"

var timedOutAt = time.Date(2019, 6, 7, 19, 11, 20, 562_000_000, time.UTC)

func TestLinesGolden(t *testing.T) {
	tests := []struct {
		name string
		line []byte
	}{
		{"start", AppendStart(nil, reqID, "")},
		{"start_version", AppendStart(nil, reqID, "7")},
		{"end", AppendEnd(nil, reqID)},
		{"report", AppendReport(nil, Report{RequestID: reqID, Duration: 976250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90})},
		{"report_cold_start", AppendReport(nil, Report{RequestID: reqID, Duration: 976250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90, InitDuration: 430470 * time.Microsecond})},
		{"report_timeout", AppendReport(nil, Report{RequestID: reqID, Duration: 3000 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsedMB: 64, Status: "timeout"})},
		{"report_error", AppendReport(nil, Report{RequestID: reqID, Duration: 12340 * time.Microsecond, MemorySizeMB: 256, MaxMemoryUsedMB: 41, InitDuration: 150 * time.Millisecond, Status: "error", ErrorType: "Runtime.ExitError"})},
		{"report_billed_minimum", AppendReport(nil, Report{RequestID: reqID, Duration: 10 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 30})},
		{"report_billed_exact", AppendReport(nil, Report{RequestID: reqID, Duration: 5 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsedMB: 30})},
		{"timeout", AppendTimeout(nil, timedOutAt, reqID, 3*time.Second)},
		{"init_start_json", AppendInitStartJSON(nil, timedOutAt, Init{Type: "on-demand", RuntimeVersion: "python3.12", FunctionName: "fn"})},
		{"init_report_json", AppendInitReportJSON(nil, timedOutAt, Init{Type: "provisioned-concurrency", Duration: 430470 * time.Microsecond})},
		{"init_report_json_error", AppendInitReportJSON(nil, timedOutAt, Init{Type: "on-demand", Duration: 3 * time.Second, Status: "timeout", ErrorType: "Sandbox.Timedout"})},
		{"invocation_timeout", func() []byte {
			b := AppendStart(nil, reqID, "")
			b = append(b, "2019-06-07T19:11:17.562Z\t"+reqID+"\tINFO\tworking\n"...)
			b = AppendTimeout(b, timedOutAt, reqID, 3*time.Second)
			b = AppendEnd(b, reqID)
			return AppendReport(b, Report{RequestID: reqID, Duration: 3003140 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90, InitDuration: 430470 * time.Microsecond, Status: "timeout"})
		}()},
		{"invocation_aborted", func() []byte {
			b := AppendStart(nil, reqID, "")
			b = append(b, "working\n"...)
			b = AppendAborted(b, timedOutAt, reqID, "shutdown")
			b = AppendEnd(b, reqID)
			return AppendReport(b, Report{RequestID: reqID, Duration: 5001250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90, Status: "error"})
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, tt.line, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(tt.line)); diff != "" {
				t.Errorf("line mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBilledDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "Duration: 0.00 ms\tBilled Duration: 1 ms\t"},
		{10 * time.Microsecond, "Duration: 0.01 ms\tBilled Duration: 1 ms\t"},
		{976250 * time.Microsecond, "Duration: 976.25 ms\tBilled Duration: 977 ms\t"},
		{5 * time.Millisecond, "Duration: 5.00 ms\tBilled Duration: 5 ms\t"},
		{5*time.Millisecond + time.Nanosecond, "Duration: 5.00 ms\tBilled Duration: 6 ms\t"},
		{-time.Millisecond, "Duration: 0.00 ms\tBilled Duration: 1 ms\t"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			got := string(AppendReport(nil, Report{RequestID: "r", Duration: tt.d}))
			if !strings.Contains(got, "\t"+tt.want) {
				t.Errorf("AppendReport(Duration %v) = %q, want it to contain %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 bytes
	long = append(long, "last line\n"...)
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"empty", nil, nil},
		{"short", []byte("START RequestId: x\nEND RequestId: x\n"), []byte("START RequestId: x\nEND RequestId: x\n")},
		{"exactly 4KB", long[:TailBytes], long[:TailBytes]},
		{"longer than 4KB", long, long[len(long)-TailBytes:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tail(tt.in)
			if want := base64.StdEncoding.EncodeToString(tt.want); got != want {
				t.Errorf("Tail(%d bytes) = %q, want %q", len(tt.in), got, want)
			}
			dec, err := base64.StdEncoding.DecodeString(got)
			if err != nil {
				t.Fatalf("Tail result does not decode: %v", err)
			}
			if len(dec) > TailBytes {
				t.Errorf("decoded tail is %d bytes, want at most %d", len(dec), TailBytes)
			}
		})
	}
}

func TestAppendLinesDoNotAllocate(t *testing.T) {
	r := Report{RequestID: reqID, Duration: 976250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90, InitDuration: 430470 * time.Microsecond, Status: "error", ErrorType: "Runtime.ExitError"}
	in := Init{Type: "on-demand", RuntimeVersion: "python3.12", FunctionName: "fn", Duration: time.Second, Status: "error", ErrorType: "Runtime.ExitError"}
	buf := make([]byte, 0, 1024)
	tests := []struct {
		name string
		fn   func()
	}{
		{"AppendStart", func() { buf = AppendStart(buf[:0], reqID, "") }},
		{"AppendEnd", func() { buf = AppendEnd(buf[:0], reqID) }},
		{"AppendReport", func() { buf = AppendReport(buf[:0], r) }},
		{"AppendTimeout", func() { buf = AppendTimeout(buf[:0], timedOutAt, reqID, 3*time.Second) }},
		{"AppendAborted", func() { buf = AppendAborted(buf[:0], timedOutAt, reqID, "shutdown") }},
		{"AppendInitStartJSON", func() { buf = AppendInitStartJSON(buf[:0], timedOutAt, in) }},
		{"AppendInitReportJSON", func() { buf = AppendInitReportJSON(buf[:0], timedOutAt, in) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.fn); got != 0 {
				t.Errorf("%s allocs/op = %v, want 0", tt.name, got)
			}
		})
	}
}

func BenchmarkAppendReport(b *testing.B) {
	r := Report{RequestID: reqID, Duration: 976250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90, InitDuration: 430470 * time.Microsecond}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReport(buf[:0], r)
	}
}

func BenchmarkAppendInvocationLines(b *testing.B) {
	r := Report{RequestID: reqID, Duration: 976250 * time.Microsecond, MemorySizeMB: 128, MaxMemoryUsedMB: 90}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendStart(buf[:0], reqID, "")
		buf = AppendEnd(buf, reqID)
		buf = AppendReport(buf, r)
	}
}
