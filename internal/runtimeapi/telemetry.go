package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The Telemetry API (2022-07-01) and the older Logs API (2020-08-15): an extension subscribes
// to platform, function and extension events, which the Server buffers per subscription and
// delivers by HTTP POST (a JSON array) or over TCP (one JSON event per line) to the
// extension's own listener inside the environment. The worker reports the platform's events
// (Emit); the Server's dialer (SetDialer) reaches the environment's network.

// Event kinds a subscription chooses ("types").
const (
	kindPlatform uint8 = 1 << iota
	kindFunction
	kindExtension
)

// Event kinds, for Emit.
const (
	KindPlatform  = kindPlatform
	KindFunction  = kindFunction
	KindExtension = kindExtension
)

// Buffering limits (Lambda's, telemetry-api.md).
const (
	minItems, maxItems, defaultItems       = 1000, 10000, 10000
	minBytes, maxBytes, defaultBytes       = 262144, 1048576, 262144
	minTimeoutMs, maxTimeoutMs, defTimeout = 25, 30000, 1000
	// backlogMax bounds the events kept from the environment's start for subscriptions made
	// during INIT (an extension subscribes after the platform.initStart it should get).
	backlogMax = 256
)

var telemetrySchemas = []string{"2022-07-01", "2022-12-13", "2025-01-29"}

// telemetry is the Server's subscriptions. Lock order: extState.mu before telemetry.mu.
type telemetry struct {
	mu       sync.Mutex
	subs     []*subscription
	backlog  []event     // events kept for subscriptions made during INIT
	noMore   bool        // the backlog is closed (the first invocation came)
	active   atomic.Bool // a subscription exists
	inflight atomic.Int32
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	wg       sync.WaitGroup
}

// SetDialer sets how deliveries reach a listener inside the environment: addr is
// 127.0.0.1:PORT in the environment's network. Call it before Serve.
func (s *Server) SetDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.tel.dial = dial
}

// Subscribed reports whether an extension subscribed to the Telemetry or Logs API.
func (s *Server) Subscribed() bool { return s.tel.active.Load() }

// Wants reports whether a subscription takes events of kind.
func (s *Server) Wants(kind uint8) bool {
	if !s.tel.active.Load() {
		return false
	}
	s.tel.mu.Lock()
	defer s.tel.mu.Unlock()
	for _, sub := range s.tel.subs {
		if sub.types&kind != 0 {
			return true
		}
	}
	return false
}

// TelemetryBusy reports whether events wait to be delivered: the environment must not be frozen.
func (s *Server) TelemetryBusy() bool {
	if !s.tel.active.Load() {
		return false
	}
	if s.tel.inflight.Load() > 0 {
		return true
	}
	s.tel.mu.Lock()
	defer s.tel.mu.Unlock()
	for _, sub := range s.tel.subs {
		if len(sub.buf) > 0 {
			return true
		}
	}
	return false
}

// EndBacklog stops keeping events for later subscriptions (called at the first invocation).
func (s *Server) EndBacklog() {
	s.tel.mu.Lock()
	s.tel.noMore, s.tel.backlog = true, nil
	s.tel.mu.Unlock()
}

// Emit reports one telemetry event of type typ with record (marshalled to JSON) now.
func (s *Server) Emit(typ string, kind uint8, record any) { s.EmitAt(time.Now(), typ, kind, record) }

// EmitAt reports one telemetry event that happened at t.
func (s *Server) EmitAt(t time.Time, typ string, kind uint8, record any) {
	s.tel.mu.Lock()
	defer s.tel.mu.Unlock()
	if s.tel.noMore && len(s.tel.subs) == 0 {
		return
	}
	rec, err := json.Marshal(record)
	if err != nil {
		return
	}
	ev := event{at: t, typ: typ, kind: kind, record: rec}
	if !s.tel.noMore && len(s.tel.backlog) < backlogMax {
		s.tel.backlog = append(s.tel.backlog, ev)
	}
	for _, sub := range s.tel.subs {
		sub.add(ev)
	}
}

type event struct {
	at     time.Time
	typ    string
	kind   uint8
	record json.RawMessage
}

func (ev event) encode() []byte {
	b, _ := json.Marshal(struct {
		Time   string          `json:"time"`
		Type   string          `json:"type"`
		Record json.RawMessage `json:"record"`
	}{ev.at.UTC().Format("2006-01-02T15:04:05.000Z"), ev.typ, ev.record})
	return b
}

// subscription is one extension's subscription.
type subscription struct {
	s        *Server
	name     string // the extension's
	types    uint8
	logsAPI  bool // the 2020-08-15 Logs API: its event names
	items    int
	bytes    int
	timeout  time.Duration
	protocol string
	addr     string // host:port to dial (the host is the environment's loopback)
	url      string // the HTTP destination

	buf  [][]byte // guarded by telemetry.mu
	size int
	// Events a delivery failed to hand over, reported by the next delivery as
	// platform.logsDropped. Under sendMu.
	droppedRecords, droppedBytes int
	kick                         chan struct{}
	sendMu                       sync.Mutex // one delivery at a time
	conn                         net.Conn   // TCP destination's connection, under sendMu
	client                       *http.Client
}

// add buffers ev if the subscription takes it. Under telemetry.mu.
func (sub *subscription) add(ev event) {
	if sub.types&ev.kind == 0 {
		return
	}
	if sub.logsAPI {
		var ok bool
		if ev, ok = logsAPIEvent(ev); !ok {
			return
		}
	}
	b := ev.encode()
	sub.buf = append(sub.buf, b)
	sub.size += len(b)
	select {
	case sub.kick <- struct{}{}:
	default:
	}
}

// logsAPIEvent maps a Telemetry API event onto the Logs API's names (2020-08-15 schema).
func logsAPIEvent(ev event) (event, bool) {
	switch ev.typ {
	case "platform.start", "platform.report", "platform.extension", "platform.logsSubscription", "function", "extension":
		return ev, true
	case "platform.runtimeDone":
		var r struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(ev.record, &r)
		ev.typ = "platform.end"
		ev.record, _ = json.Marshal(map[string]string{"requestId": r.RequestID})
		return ev, true
	}
	return ev, false
}

func (sub *subscription) full() bool {
	sub.s.tel.mu.Lock()
	defer sub.s.tel.mu.Unlock()
	return len(sub.buf) >= sub.items || sub.size >= sub.bytes
}

// run delivers the subscription's events: a batch when maxItems or maxBytes is reached, or
// timeoutMs after its first event, until the environment closes.
func (sub *subscription) run() {
	defer sub.s.tel.wg.Done()
	closed := sub.s.closed
	for {
		select {
		case <-sub.kick:
		case <-closed:
			return
		}
		t := time.NewTimer(sub.timeout)
	wait:
		for !sub.full() {
			select {
			case <-sub.kick:
			case <-t.C:
				break wait
			case <-closed:
				t.Stop()
				return
			}
		}
		t.Stop()
		sub.deliver()
	}
}

// deliver sends what is buffered. Events an extension does not accept are dropped, as Lambda
// drops them, and counted in a platform.logsDropped event at the head of the next batch.
func (sub *subscription) deliver() {
	sub.sendMu.Lock()
	defer sub.sendMu.Unlock()
	tel := &sub.s.tel
	tel.mu.Lock()
	batch := sub.buf
	sub.buf, sub.size = nil, 0
	if len(batch) > 0 {
		tel.inflight.Add(1)
	}
	tel.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	defer tel.inflight.Add(-1)
	if sub.droppedRecords > 0 {
		rec, _ := json.Marshal(map[string]any{"droppedRecords": sub.droppedRecords, "droppedBytes": sub.droppedBytes,
			"reason": "Consumer seems to have fallen behind as it has not acknowledged receipt of logs."})
		batch = append([][]byte{event{at: time.Now(), typ: "platform.logsDropped", record: rec}.encode()}, batch...)
		sub.droppedRecords, sub.droppedBytes = 0, 0
	}
	failed := func(err error) {
		sub.s.log.Debug("telemetry delivery", "extension", sub.name, "err", err)
		for _, b := range batch {
			sub.droppedRecords++
			sub.droppedBytes += len(b)
		}
	}
	var body bytes.Buffer
	if sub.protocol == "TCP" {
		for _, b := range batch {
			body.Write(b)
			body.WriteByte('\n')
		}
		if err := sub.sendTCP(body.Bytes()); err != nil {
			failed(err)
		}
		return
	}
	body.WriteByte('[')
	for i, b := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(b)
	}
	body.WriteByte(']')
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := sub.client.Do(req)
	if err != nil {
		failed(err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		failed(fmt.Errorf("listener answered %s", resp.Status))
	}
}

func (sub *subscription) sendTCP(b []byte) error {
	if sub.conn == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := sub.s.dialEnv(ctx, "tcp", sub.addr)
		if err != nil {
			return err
		}
		sub.conn = c
	}
	_ = sub.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := sub.conn.Write(b); err != nil {
		sub.conn.Close()
		sub.conn = nil
		return err
	}
	return nil
}

// dialEnv connects to addr (host:port) in the environment. Whatever the host part names
// (sandbox.localdomain, as AWS's extensions put it, or localhost), Flint resolves it itself to
// the environment's loopback: inside the linux sandbox's network namespace, where the root's
// /etc/hosts names it so too, and in the process sandbox the host's, whose own /etc/hosts
// rarely names sandbox.localdomain. The IPv4 loopback first, then the IPv6 one: a listener
// bound to "localhost" may be on ::1 only (Node's lookup order on many hosts).
func (s *Server) dialEnv(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	dial := s.tel.dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	c, err := dial(ctx, network, net.JoinHostPort("127.0.0.1", port))
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return c, err
	}
	if c, err6 := dial(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
		return c, nil
	}
	return nil, err
}

// flushTelemetry delivers every subscription's buffered events now (before SHUTDOWN).
func (s *Server) flushTelemetry() {
	if !s.tel.active.Load() {
		return
	}
	s.tel.mu.Lock()
	subs := slices.Clone(s.tel.subs)
	s.tel.mu.Unlock()
	for _, sub := range subs {
		sub.deliver()
	}
}

// closeTelemetry waits for the delivery goroutines, which Close's closed channel stops.
func (s *Server) closeTelemetry() {
	s.tel.wg.Wait()
	s.tel.mu.Lock()
	subs := s.tel.subs
	s.tel.mu.Unlock()
	for _, sub := range subs {
		sub.sendMu.Lock()
		if sub.conn != nil {
			sub.conn.Close()
			sub.conn = nil
		}
		sub.sendMu.Unlock()
		sub.client.CloseIdleConnections()
	}
}

// subscribeRequest is the body of a Telemetry (or Logs) API subscription.
type subscribeRequest struct {
	SchemaVersion string   `json:"schemaVersion"`
	Types         []string `json:"types"`
	Buffering     *struct {
		MaxItems  *int `json:"maxItems"`
		MaxBytes  *int `json:"maxBytes"`
		TimeoutMs *int `json:"timeoutMs"`
	} `json:"buffering"`
	Destination *struct {
		Protocol string `json:"protocol"`
		URI      string `json:"URI"`
	} `json:"destination"`
}

func validationError(msg string) reply {
	return reply{status: http.StatusBadRequest, body: errorJSON("ValidationError", msg)}
}

// telemetrySubscribe is PUT /2022-07-01/telemetry.
func (s *Server) telemetrySubscribe(r *http.Request, _ string) reply { return s.subscribe(r, false) }

// logsSubscribe is PUT /2020-08-15/logs, the Telemetry API's predecessor.
func (s *Server) logsSubscribe(r *http.Request, _ string) reply { return s.subscribe(r, true) }

func (s *Server) subscribe(r *http.Request, logsAPI bool) reply {
	if r.Method != http.MethodPut {
		return reply{status: http.StatusNotFound, body: errorJSON("InvalidRequest", "Unknown Telemetry API path: "+r.Method+" "+r.URL.Path)}
	}
	id := r.Header.Get("Lambda-Extension-Identifier")
	if id == "" {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")}
	}
	e := s.extensionByID(id)
	if e == nil {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier")}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return reply{status: http.StatusBadRequest, body: errorJSON("InvalidRequestFormat", "HTTP request detected as truncated")}
	}
	var req subscribeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return reply{status: http.StatusBadRequest, body: errorJSON("InvalidRequestFormat", "Could not parse request body: "+err.Error())}
	}
	sub, problems := s.newSubscription(e.name, req, logsAPI)
	if len(problems) > 0 {
		return validationError(strings.Join(problems, "; "))
	}
	typeNames := []string{}
	for _, t := range req.Types {
		if !slices.Contains(typeNames, t) {
			typeNames = append(typeNames, t)
		}
	}
	subEvent, state := "platform.telemetrySubscription", "Subscribed"
	if logsAPI {
		subEvent = "platform.logsSubscription"
	}
	s.tel.mu.Lock()
	for _, o := range s.tel.subs {
		if o.name == e.name {
			state = "Already subscribed"
		}
	}
	if state == "Subscribed" {
		s.tel.subs = append(s.tel.subs, sub)
		s.tel.active.Store(true)
		for _, ev := range s.tel.backlog {
			sub.add(ev)
		}
		s.tel.wg.Add(1)
		go sub.run() // stopped by Close (closed), waited for by closeTelemetry
	}
	s.tel.mu.Unlock()
	s.Emit(subEvent, kindPlatform, map[string]any{"name": e.name, "state": state, "types": typeNames})
	return reply{status: http.StatusOK, body: []byte(`"OK"`)}
}

// newSubscription validates req; the problems are worded as Lambda's ValidationError joins them.
func (s *Server) newSubscription(name string, req subscribeRequest, logsAPI bool) (*subscription, []string) {
	var problems []string
	if !logsAPI {
		switch {
		case req.SchemaVersion == "":
			problems = append(problems, "schemaVersion should not be empty")
		case !slices.Contains(telemetrySchemas, req.SchemaVersion):
			problems = append(problems, fmt.Sprintf("schemaVersion %q is not supported (supported: %s)", req.SchemaVersion, strings.Join(telemetrySchemas, ", ")))
		}
	}
	sub := &subscription{s: s, name: name, logsAPI: logsAPI, items: defaultItems, bytes: defaultBytes,
		timeout: defTimeout * time.Millisecond, kick: make(chan struct{}, 1)}
	if len(req.Types) == 0 {
		problems = append(problems, "types should not be empty")
	}
	for _, t := range req.Types {
		switch t {
		case "platform":
			sub.types |= kindPlatform
		case "function":
			sub.types |= kindFunction
		case "extension":
			sub.types |= kindExtension
		default:
			problems = append(problems, fmt.Sprintf("type %q is not one of platform, function, extension", t))
		}
	}
	if b := req.Buffering; b != nil {
		check := func(field string, v *int, lo, hi int, into *int) {
			if v == nil {
				return
			}
			if *v < lo || *v > hi {
				problems = append(problems, fmt.Sprintf("buffering.%s should be between %d and %d", field, lo, hi))
				return
			}
			*into = *v
		}
		check("maxItems", b.MaxItems, minItems, maxItems, &sub.items)
		check("maxBytes", b.MaxBytes, minBytes, maxBytes, &sub.bytes)
		ms := defTimeout
		check("timeoutMs", b.TimeoutMs, minTimeoutMs, maxTimeoutMs, &ms)
		sub.timeout = time.Duration(ms) * time.Millisecond
	}
	if req.Destination == nil {
		problems = append(problems, "destination should not be empty")
		return sub, problems
	}
	sub.protocol = req.Destination.Protocol
	switch sub.protocol {
	case "HTTP", "TCP":
	default:
		problems = append(problems, fmt.Sprintf("protocol %q is not one of HTTP, TCP", sub.protocol))
	}
	if p := destinationProblem(sub, req.Destination.URI); p != "" {
		problems = append(problems, p)
	}
	sub.client = &http.Client{Transport: &http.Transport{
		DialContext:         s.dialEnv,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
	return sub, problems
}

// destinationProblem checks a destination URI: the extension's listener in the environment,
// sandbox.localdomain (or sandbox) with a port, not the Runtime API's.
func destinationProblem(sub *subscription, uri string) string {
	if uri == "" {
		return "URI should not be empty"
	}
	raw := uri
	if sub.protocol == "TCP" && !strings.Contains(uri, "://") {
		raw = "tcp://" + uri
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("URI %q is not a valid URI", uri)
	}
	want := "http"
	if sub.protocol == "TCP" {
		want = "tcp"
	}
	if u.Scheme != want && sub.protocol != "" {
		return fmt.Sprintf("URI scheme should be %s for protocol %s", want, sub.protocol)
	}
	switch u.Hostname() {
	case "sandbox.localdomain", "sandbox", "localhost", "127.0.0.1":
	default:
		return fmt.Sprintf("URI host %q is not sandbox.localdomain: the destination must be in the execution environment", u.Hostname())
	}
	if u.Port() == "" {
		return "URI port is not provided"
	}
	if u.Port() == "9001" {
		return "URI port 9001 is reserved for the Runtime API"
	}
	sub.addr = u.Host
	sub.url = u.String()
	return ""
}
