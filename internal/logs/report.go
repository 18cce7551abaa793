package logs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// ReadReport is an invocation's report read back from its stored log record: its platform
// lines (START and REPORT in the Text log format, platform.start and platform.report events in
// JSON). The console and `flint bench` read it; AppendReport and AppendReportJSON write it.
type ReadReport struct {
	RequestID      string  `json:"requestId"`
	Version        string  `json:"version,omitempty"`
	DurationMs     float64 `json:"durationMs"`
	InitDurationMs float64 `json:"initDurationMs,omitempty"`
	Status         string  `json:"status"` // success, error, timeout
	ErrorType      string  `json:"errorType,omitempty"`
	// Cold: the report has an Init Duration (an environment's first invocation), however short:
	// one under 5 µs prints as 0.00 ms.
	Cold bool `json:"cold"`
}

// ParseReport finds the invocation's report in a record's text; ok is false when the record
// has none (a record the platform cut short, or a system log level above INFO).
func ParseReport(text []byte) (r ReadReport, ok bool) {
	for line := range bytes.Lines(text) {
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("START RequestId: ")):
			if _, v, found := strings.Cut(string(line), " Version: "); found {
				r.Version = strings.TrimSpace(v)
			}
		case bytes.HasPrefix(line, []byte("REPORT RequestId: ")):
			r = textReport(string(line), r.Version)
			ok = true
		case bytes.HasPrefix(line, []byte(`{`)) && bytes.Contains(line, []byte(`"platform.`)):
			var ev struct {
				Type   string `json:"type"`
				Record struct {
					RequestID string `json:"requestId"`
					Version   string `json:"version"`
					Status    string `json:"status"`
					ErrorType string `json:"errorType"`
					Metrics   struct {
						DurationMs     float64  `json:"durationMs"`
						InitDurationMs *float64 `json:"initDurationMs"`
					} `json:"metrics"`
				} `json:"record"`
			}
			if json.Unmarshal(line, &ev) != nil {
				continue
			}
			switch ev.Type {
			case "platform.start":
				r.Version = ev.Record.Version
			case "platform.report":
				rec := ev.Record
				r = ReadReport{RequestID: rec.RequestID, Version: r.Version, DurationMs: rec.Metrics.DurationMs,
					Status: rec.Status, ErrorType: rec.ErrorType}
				if init := rec.Metrics.InitDurationMs; init != nil {
					r.InitDurationMs, r.Cold = *init, true
				}
				if r.Status == "" {
					r.Status = "success"
				}
				ok = true
			}
		}
	}
	return r, ok
}

// textReport reads Lambda's REPORT line: TAB-separated "Name: value" fields.
func textReport(line, version string) ReadReport {
	r := ReadReport{Version: version, Status: "success"}
	for f := range strings.SplitSeq(strings.TrimPrefix(line, "REPORT "), "\t") {
		k, v, found := strings.Cut(f, ": ")
		if !found {
			continue
		}
		switch k {
		case "RequestId":
			r.RequestID = v
		case "Duration":
			r.DurationMs = millis(v)
		case "Init Duration":
			r.InitDurationMs, r.Cold = millis(v), true
		case "Status":
			r.Status = v
		case "Error Type":
			r.ErrorType = v
		}
	}
	return r
}

func millis(v string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64)
	return f
}
