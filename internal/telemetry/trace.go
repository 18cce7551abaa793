package telemetry

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"time"
)

// Trace headers in X-Ray's format, as Lambda reads X-Amzn-Trace-Id and hands the runtime
// Lambda-Runtime-Trace-Id (its clients copy it to _X_AMZN_TRACE_ID):
//
//	Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1
//
// Root is "1-", the trace's start in Unix seconds (8 hex digits), "-" and 24 random hex digits;
// Parent is the calling segment's (span's) 16-hex id. The root's 32 hex digits are the trace's
// OpenTelemetry trace ID, as AWS's own X-Ray/OTel propagators map them, so the spans Flint
// exports and what the function sees share one trace.

// Trigger says how an invocation came (OpenTelemetry's faas.trigger).
const (
	TriggerHTTP       = "http"       // the Invoke API, function URLs
	TriggerPubSub     = "pubsub"     // async events (Event invokes, destinations, schedules)
	TriggerDatasource = "datasource" // event source mapping batches
)

// NewTraceHeader returns a new root trace header, as Lambda makes for an invocation whose caller
// sent none: a fresh root, a parent id and the sampling decision.
func NewTraceHeader(now time.Time, sampled bool) string {
	var b [headerLen]byte
	root := newRoot(now)
	n := copy(b[:], "Root=")
	n += encodeRoot(b[n:], root)
	n += copy(b[n:], ";Parent=")
	var parent [8]byte
	putUint64(parent[:], nonZero())
	n += hex.Encode(b[n:], parent[:])
	n += copy(b[n:], ";Sampled=")
	b[n] = '0'
	if sampled {
		b[n] = '1'
	}
	n++
	return string(b[:n])
}

// headerLen is the length of a header NewTraceHeader makes.
const headerLen = len("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")

// TraceContext is a trace header's parts.
type TraceContext struct {
	TraceID [16]byte // the root's time and random parts
	Parent  [8]byte  // zero: none
	// Sampled is the header's decision: '1', '0', or 0 when it has none ("?" or absent).
	Sampled byte
}

// ParseTraceHeader reads an X-Ray trace header; ok is false when it has no well-formed Root.
// It allocates nothing.
func ParseTraceHeader(h string) (tc TraceContext, ok bool) {
	for h != "" {
		var field string
		field, h, _ = strings.Cut(h, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			// 1-XXXXXXXX-XXXXXXXXXXXXXXXXXXXXXXXX
			if len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' {
				return tc, false
			}
			if !decodeHex(tc.TraceID[:4], v[2:10]) || !decodeHex(tc.TraceID[4:], v[11:]) {
				return tc, false
			}
			ok = true
		case "Parent":
			if len(v) != 16 || !decodeHex(tc.Parent[:], v) {
				tc.Parent = [8]byte{}
			}
		case "Sampled":
			if v == "1" || v == "0" {
				tc.Sampled = v[0]
			}
		}
	}
	return tc, ok && tc.TraceID != [16]byte{}
}

// FormatTraceHeader writes a trace header for tc.
func FormatTraceHeader(tc TraceContext) string {
	var b [headerLen]byte
	n := copy(b[:], "Root=")
	n += encodeRoot(b[n:], tc.TraceID)
	if tc.Parent != [8]byte{} {
		n += copy(b[n:], ";Parent=")
		n += hex.Encode(b[n:], tc.Parent[:])
	}
	if tc.Sampled != 0 {
		n += copy(b[n:], ";Sampled=")
		b[n] = tc.Sampled
		n++
	}
	return string(b[:n])
}

// TraceRoot returns a header's Root value ("" if it has none): what matches across the hops of
// one trace.
func TraceRoot(h string) string {
	for h != "" {
		var field string
		field, h, _ = strings.Cut(h, ";")
		if v, ok := strings.CutPrefix(strings.TrimSpace(field), "Root="); ok {
			return v
		}
	}
	return ""
}

func newRoot(now time.Time) [16]byte {
	var id [16]byte
	s := uint32(now.Unix())
	id[0], id[1], id[2], id[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	putUint64(id[4:12], rand.Uint64())
	r := rand.Uint32()
	id[12], id[13], id[14], id[15] = byte(r>>24), byte(r>>16), byte(r>>8), byte(r)
	return id
}

func encodeRoot(b []byte, id [16]byte) int {
	n := copy(b, "1-")
	n += hex.Encode(b[n:], id[:4])
	b[n] = '-'
	n++
	n += hex.Encode(b[n:], id[4:])
	return n
}

// nonZero is a random 64-bit id (span ids must not be zero).
func nonZero() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
