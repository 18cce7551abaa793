package logs

import (
	"cmp"
	"strconv"
	"time"
)

// Latest is the version Lambda prints on START lines for unpublished code.
const Latest = "$LATEST"

// AppendStart appends Lambda's START line, "START RequestId: <id> Version: <version>\n". An empty
// version prints as $LATEST.
func AppendStart(b []byte, requestID, version string) []byte {
	if version == "" {
		version = Latest
	}
	b = append(b, "START RequestId: "...)
	b = append(b, requestID...)
	b = append(b, " Version: "...)
	b = append(b, version...)
	return append(b, '\n')
}

// AppendEnd appends Lambda's END line, "END RequestId: <id>\n".
func AppendEnd(b []byte, requestID string) []byte {
	b = append(b, "END RequestId: "...)
	b = append(b, requestID...)
	return append(b, '\n')
}

// Report holds the figures of one invocation's REPORT line.
type Report struct {
	RequestID       string
	Duration        time.Duration // printed in ms with 2 decimals; billed as the ceiling in whole ms (minimum 1)
	MemorySizeMB    int
	MaxMemoryUsedMB int
	InitDuration    time.Duration // printed only when > 0, i.e. on an environment's first invoke
	Status          string        // "" on success, else "timeout" or "error"
	ErrorType       string        // printed after Status when set, e.g. "Runtime.ExitError"
}

// AppendReport appends Lambda's REPORT line: TAB-separated fields, each followed by a TAB (so the
// line ends with a trailing TAB), then "\n".
//
//	REPORT RequestId: <id>\tDuration: 976.25 ms\tBilled Duration: 977 ms\tMemory Size: 128 MB\tMax Memory Used: 90 MB\tInit Duration: 430.47 ms\t
func AppendReport(b []byte, r Report) []byte {
	b = append(b, "REPORT RequestId: "...)
	b = append(b, r.RequestID...)
	b = append(b, "\tDuration: "...)
	b = appendMillis(b, r.Duration)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, billedMillis(r.Duration), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(r.MemorySizeMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(r.MaxMemoryUsedMB), 10)
	b = append(b, " MB\t"...)
	if r.InitDuration > 0 {
		b = append(b, "Init Duration: "...)
		b = appendMillis(b, r.InitDuration)
		b = append(b, " ms\t"...)
	}
	if r.Status != "" {
		b = append(b, "Status: "...)
		b = append(b, r.Status...)
		b = append(b, '\t')
	}
	if r.ErrorType != "" {
		b = append(b, "Error Type: "...)
		b = append(b, r.ErrorType...)
		b = append(b, '\t')
	}
	return append(b, '\n')
}

// AppendTimeout appends the line Lambda writes when an invocation exceeds its timeout:
// "2019-06-07T19:11:20.562Z <id> Task timed out after 3.00 seconds\n". at is printed in UTC with
// millisecond precision. The caller places it in the invocation's output (before END).
func AppendTimeout(b []byte, at time.Time, requestID string, timeout time.Duration) []byte {
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	b = append(b, requestID...)
	b = append(b, " Task timed out after "...)
	b = strconv.AppendFloat(b, timeout.Seconds(), 'f', 2, 64)
	return append(b, " seconds\n"...)
}

// appendMillis appends d in milliseconds with two decimals ("976.25").
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// billedMillis is the ceiling of d in whole milliseconds, at least 1 (Lambda's 1-ms billing).
func billedMillis(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// AppendAborted appends the line Flint writes in place of an invocation's end when the platform
// stopped its environment while the function ran (a shutdown past its grace period):
// "2019-06-07T19:11:20.562Z <id> Invocation stopped by the platform: <reason>\n". Lambda has no
// such line; like the timeout line it goes in the invocation's output, before END.
func AppendAborted(b []byte, at time.Time, requestID, reason string) []byte {
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	b = append(b, requestID...)
	b = append(b, " Invocation stopped by the platform: "...)
	b = append(b, reason...)
	return append(b, '\n')
}

// The JSON log format (LoggingConfig.LogFormat JSON) has Lambda write its platform lines as
// events, one JSON object per line: {"time": ..., "type": "platform.start", "record": {...}}.
// The records are the Telemetry API's; END has none (the report says how the invocation ended).

// AppendStartJSON appends the platform.start event of an invocation that started at.
func AppendStartJSON(b []byte, at time.Time, requestID, version string) []byte {
	if version == "" {
		version = Latest
	}
	b = appendEventHead(b, at, "platform.start")
	b = append(b, `"requestId":`...)
	b = appendJSONString(b, requestID)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, version)
	return append(b, "}}\n"...)
}

// AppendReportJSON appends the platform.report event of an invocation that ended at: its
// metrics, and its status (success, error or timeout) with the error's type.
func AppendReportJSON(b []byte, at time.Time, r Report) []byte {
	b = appendEventHead(b, at, "platform.report")
	b = append(b, `"requestId":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"metrics":{"durationMs":`...)
	b = appendMillis(b, r.Duration)
	b = append(b, `,"billedDurationMs":`...)
	b = strconv.AppendInt(b, billedMillis(r.Duration), 10)
	b = append(b, `,"memorySizeMB":`...)
	b = strconv.AppendInt(b, int64(r.MemorySizeMB), 10)
	b = append(b, `,"maxMemoryUsedMB":`...)
	b = strconv.AppendInt(b, int64(r.MaxMemoryUsedMB), 10)
	if r.InitDuration > 0 {
		b = append(b, `,"initDurationMs":`...)
		b = appendMillis(b, r.InitDuration)
	}
	b = append(b, `},"status":`...)
	b = appendJSONString(b, cmp.Or(r.Status, "success"))
	if r.ErrorType != "" {
		b = append(b, `,"errorType":`...)
		b = appendJSONString(b, r.ErrorType)
	}
	return append(b, "}}\n"...)
}

// Init is what the platform.initStart and platform.initReport events say of an environment's
// INIT, with the Telemetry API's field names.
type Init struct {
	Type            string // initializationType: on-demand or provisioned-concurrency
	RuntimeVersion  string
	FunctionName    string
	FunctionVersion string        // "" is $LATEST
	Duration        time.Duration // platform.initReport's metrics.durationMs
	Status          string        // platform.initReport's: success, error or timeout ("": success)
	ErrorType       string
}

// AppendInitStartJSON appends the platform.initStart event of an INIT that began at. Lambda
// writes it before the INIT's output, on an environment's first invocation.
func AppendInitStartJSON(b []byte, at time.Time, in Init) []byte {
	b = appendEventHead(b, at, "platform.initStart")
	b = append(b, `"initializationType":`...)
	b = appendJSONString(b, in.Type)
	b = append(b, `,"phase":"init","runtimeVersion":`...)
	b = appendJSONString(b, in.RuntimeVersion)
	b = append(b, `,"functionName":`...)
	b = appendJSONString(b, in.FunctionName)
	b = append(b, `,"functionVersion":`...)
	b = appendJSONString(b, cmp.Or(in.FunctionVersion, Latest))
	return append(b, "}}\n"...)
}

// AppendInitReportJSON appends the platform.initReport event of an INIT that ended at: how it
// ended and how long it took.
func AppendInitReportJSON(b []byte, at time.Time, in Init) []byte {
	b = appendEventHead(b, at, "platform.initReport")
	b = append(b, `"initializationType":`...)
	b = appendJSONString(b, in.Type)
	b = append(b, `,"phase":"init","status":`...)
	b = appendJSONString(b, cmp.Or(in.Status, "success"))
	if in.ErrorType != "" {
		b = append(b, `,"errorType":`...)
		b = appendJSONString(b, in.ErrorType)
	}
	b = append(b, `,"metrics":{"durationMs":`...)
	b = appendMillis(b, in.Duration)
	return append(b, "}}}\n"...)
}

func appendEventHead(b []byte, at time.Time, typ string) []byte {
	b = append(b, `{"time":"`...)
	b = at.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	return append(b, `","record":{`...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
