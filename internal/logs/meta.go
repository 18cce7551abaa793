package logs

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Headers of a record stored with its Meta.
const (
	hdrStream = "Flint-Log-Stream" // the CloudWatch Logs stream: YYYY/MM/DD/[VERSION]<32 hex>, or YYYY/MM/DD/NAME[VERSION][<32 hex>]
	hdrStart  = "Flint-Start"      // Meta.Start, Unix nanoseconds
	hdrEnd    = "Flint-End"        // Meta.Start+Duration, Unix nanoseconds
	hdrInit   = "Flint-Init"       // Meta.Init, nanoseconds
)

// envStream is one environment's stream name and when a record of it was last published.
type envStream struct {
	name string
	seen time.Time
}

// maxEnvs bounds Store.envs: past it, environments not heard from for envForget are forgotten
// (a forgotten environment that logs again gets a stream named by that day).
const (
	maxEnvs   = 1 << 14
	envForget = 6 * time.Hour
)

// streamName returns the stream of e's environment, naming it on first sight as Lambda does:
// the UTC day the environment began, the version in brackets, 32 hex digits for the environment
// (in a custom log group: the day, the function, the version and the 32 hex digits in brackets).
func (s *Store) streamName(fn string, m Meta) string {
	if m.Stream != "" {
		return m.Stream
	}
	key := fn + "/" + m.Env
	now := time.Now()
	if st, ok := s.envs[key]; ok {
		st.seen = now
		s.envs[key] = st
		return st.name
	}
	if len(s.envs) >= maxEnvs {
		for k, st := range s.envs {
			if now.Sub(st.seen) > envForget {
				delete(s.envs, k)
			}
		}
		if len(s.envs) >= maxEnvs {
			clear(s.envs)
		}
	}
	version := m.Version
	if version == "" {
		version = Latest
	}
	sum := sha256.Sum256([]byte(key))
	day := m.Start.Add(-m.Init).UTC().Format("2006/01/02")
	name := day + "/[" + version + "]" + hex.EncodeToString(sum[:16])
	if !ownGroup(fn, m.Group) {
		// A custom group, which several functions may share, names the function too.
		name = day + "/" + fn + "[" + version + "][" + hex.EncodeToString(sum[:16]) + "]"
	}
	s.envs[key] = envStream{name: name, seen: now}
	return name
}

// header is the JetStream header that carries e's Meta.
func (s *Store) header(e *entry) nats.Header {
	m := e.meta
	h := make(nats.Header, 4)
	h[hdrStream] = []string{s.streamName(e.fn, m)}
	h[hdrStart] = []string{strconv.FormatInt(m.Start.UnixNano(), 10)}
	h[hdrEnd] = []string{strconv.FormatInt(m.Start.Add(m.Duration).UnixNano(), 10)}
	h[hdrInit] = []string{strconv.FormatInt(int64(m.Init), 10)}
	return h
}

// readMeta fills r's stream and times from a stored message's header; a record stored without
// Meta keeps them zero.
func readMeta(r *Record, h nats.Header) {
	if h == nil {
		return
	}
	r.Stream = h.Get(hdrStream)
	if r.Stream == "" {
		return
	}
	ns := func(k string) int64 {
		n, _ := strconv.ParseInt(h.Get(k), 10, 64)
		return n
	}
	r.Start = time.Unix(0, ns(hdrStart)).UTC()
	r.End = time.Unix(0, ns(hdrEnd)).UTC()
	r.Init = time.Duration(ns(hdrInit))
}
