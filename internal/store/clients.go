package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Outside NATS clients (flint serve --nats-listen) never share Flint's account. Flint's own
// connections live in the global account, which holds every KV bucket, the object store and
// the internal streams. An outside client authenticates with the token and is placed in the
// account clientsAccount, which has no JetStream of its own and sees only what the global
// account exports to it:
//
//   - flint.queues.> and flint.streams.>: publishing to event sources (a JetStream publish's
//     PubAck comes back through the export's reply mapping);
//   - the JetStream API requests a reader needs (stream info, message get, pull consumer
//     create and info), mapped to proxyAPI: the proxy (on Flint's side) makes the request
//     only if it reads an event-source or destination stream, and relays the answer, or
//     answers with a JetStream API error. Push consumers are refused: JetStream publishes a push
//     consumer's messages to its deliver subject inside Flint's account, where that subject
//     could be a KV bucket's or the async queue's;
//   - for each readable stream the proxy has answered about, its pull requests
//     ($JS.API.CONSUMER.MSG.NEXT.<stream>.*) and acknowledgements ($JS.ACK.<stream>.>), which
//     go to JetStream directly (their replies cannot be relayed: only JetStream may send a
//     message whose reply is an ack subject).
//
// Nothing else crosses (any other request finds no responder): a client cannot subscribe to
// Flint's subjects or inboxes, reach the KV or object store APIs, list streams, or create,
// change or delete a stream or a consumer. (It can pull from any consumer of a readable
// stream, a stream mapping's ordered consumer included, whose name it would have to guess.)
const (
	clientsAccount = "FLINT_CLIENTS"
	proxyAPI       = "flint.clients.jsapi" // $JS.API.X arrives as proxyAPI.X
)

// proxied are the JetStream API requests outside clients may make, through the proxy.
var proxied = []string{"STREAM.INFO.*", "STREAM.MSG.GET.*", "DIRECT.GET.>", "CONSUMER.CREATE.>",
	"CONSUMER.DURABLE.CREATE.>", "CONSUMER.INFO.>"}

// Prefixes of the subjects an event-source or destination stream may hold; a stream holding
// any other subject (or named like Flint's own) is not the clients' to read.
var publicSubjects = []string{"flint.queues.", "flint.streams.", "flint.destinations."}

// natsAuth decides who may connect to the embedded server. Flint's own in-process connections
// present a random token made at start and kept only in memory; outside clients present the
// configured token and land in the clients account.
type natsAuth struct {
	internal string
	token    string                         // "" when no outside client may connect
	clients  atomic.Pointer[server.Account] // nil until the account is set up: outside clients wait
}

var _ server.Authentication = (*natsAuth)(nil)

func newNATSAuth(token string) (*natsAuth, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("nats internal token: %w", err)
	}
	return &natsAuth{internal: hex.EncodeToString(b), token: token}, nil
}

// Check authenticates one client connection. Routes never reach it (nats-server sends them to
// the router authentication: routeAuth in cluster.go); gateways and leaf nodes are never
// opened.
func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	if o.Username != "" || o.Password != "" || o.Nkey != "" || o.JWT != "" {
		return false
	}
	if addr := c.RemoteAddress(); addr != nil && addr.Network() == "pipe" && equal(o.Token, a.internal) {
		c.RegisterUser(&server.User{}) // Flint itself: the global account, every right
		return true
	}
	acc := a.clients.Load()
	if a.token == "" || acc == nil || !equal(o.Token, a.token) {
		return false
	}
	c.RegisterUser(&server.User{Account: acc, Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"flint.queues.>", "flint.streams.>", "$JS.API.>", "$JS.ACK.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}})
	return true
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// openClients sets up the clients account and its imports, starts the proxy on its own
// connection and only then lets outside clients in.
func (s *Store) openClients(auth *natsAuth) error {
	acc, err := s.ns.RegisterAccount(clientsAccount)
	if err != nil {
		return fmt.Errorf("nats clients account: %w", err)
	}
	flint := s.ns.GlobalAccount()
	imports := []struct{ from, to string }{{"flint.queues.>", "flint.queues.>"}, {"flint.streams.>", "flint.streams.>"}}
	for _, api := range proxied {
		imports = append(imports, struct{ from, to string }{"$JS.API." + api, proxyAPI + "." + api})
	}
	for _, i := range imports {
		if err := importService(flint, acc, i.from, i.to, server.Singleton); err != nil {
			return err
		}
	}
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name("flint-clients-proxy"), nats.MaxReconnects(-1), nats.Token(auth.internal))
	if err != nil {
		return fmt.Errorf("connect the nats clients proxy: %w", err)
	}
	s.proxyNC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	p := &proxy{nc: nc, js: js, log: s.log, flint: flint, clients: acc, readable: map[string]bool{}}
	if _, err := nc.Subscribe(proxyAPI+".>", p.api); err != nil {
		return fmt.Errorf("nats clients proxy: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("nats clients proxy: %w", err)
	}
	auth.clients.Store(acc)
	return nil
}

// importService exports subject to from Flint's account to the clients account, where it is
// subject from.
func importService(flint, clients *server.Account, from, to string, resp server.ServiceRespType) error {
	if err := flint.AddServiceExportWithResponse(to, resp, []*server.Account{clients}); err != nil {
		return fmt.Errorf("nats export %s: %w", to, err)
	}
	if err := clients.AddServiceImport(flint, from, to); err != nil {
		return fmt.Errorf("nats import %s: %w", from, err)
	}
	return nil
}

// proxy answers outside clients' JetStream API requests that read event-source and
// destination streams, and refuses the rest.
type proxy struct {
	nc             *nats.Conn
	js             jetstream.JetStream
	log            *slog.Logger
	flint, clients *server.Account

	mu       sync.Mutex
	readable map[string]bool // streams whose pulls and acks are imported
}

// streamKind says what outside clients may do with a stream.
type streamKind int

const (
	streamPrivate  streamKind = iota // Flint's own: nothing
	streamQueue                      // a queue (work queue read by a mapping): info only
	streamReadable                   // a stream or destination: info, messages, pull consumers
	streamMissing                    // not there: JetStream answers "not found"
)

// access is what a JetStream API request needs.
type access int

const (
	needInfo access = iota
	needRead
	needPullConsumer
)

// api handles $JS.API.<rest>, one request at a time (they are few: a reader's pulls and acks
// do not come here).
func (p *proxy) api(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, proxyAPI+".")
	stream, need, ok := jsRequest(strings.Split(rest, "."))
	if !ok {
		p.refuse(m, fmt.Sprintf("$JS.API.%s is not open to NATS clients of Flint", rest))
		return
	}
	if need == needPullConsumer {
		var req struct {
			Config struct {
				DeliverSubject string `json:"deliver_subject"`
			} `json:"config"`
		}
		if err := json.Unmarshal(m.Data, &req); err != nil || req.Config.DeliverSubject != "" {
			p.refuse(m, "only pull consumers are open to NATS clients of Flint")
			return
		}
	}
	kind := p.kind(stream)
	if !allowed(kind, need) {
		p.refuse(m, fmt.Sprintf("stream %s is not open to NATS clients of Flint", stream))
		return
	}
	if kind == streamReadable {
		if err := p.openReads(stream); err != nil {
			p.log.Warn("nats clients proxy: open reads", "stream", stream, "err", err)
			p.refuse(m, fmt.Sprintf("stream %s: %v", stream, err))
			return
		}
	}
	p.relay("$JS.API."+rest, m)
}

// openReads imports a readable stream's pull requests and acknowledgements into the clients
// account (once).
func (p *proxy) openReads(stream string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readable[stream] {
		return nil
	}
	// A pull request is answered by every message it fetches.
	next := "$JS.API.CONSUMER.MSG.NEXT." + stream + ".*"
	if err := importService(p.flint, p.clients, next, next, server.Streamed); err != nil {
		return err
	}
	ack := "$JS.ACK." + stream + ".>"
	if err := importService(p.flint, p.clients, ack, ack, server.Singleton); err != nil {
		return err
	}
	p.readable[stream] = true
	return nil
}

// jsRequest names the stream a JetStream API request is about and what it needs; ok is false
// for every request outside clients may not make (stream and consumer administration, account
// info, listings, purges, deletes).
func jsRequest(t []string) (stream string, need access, ok bool) {
	switch {
	case len(t) == 3 && t[0] == "STREAM" && t[1] == "INFO":
		return t[2], needInfo, true
	case len(t) == 4 && t[0] == "STREAM" && t[1] == "MSG" && t[2] == "GET":
		return t[3], needRead, true
	case len(t) >= 3 && t[0] == "DIRECT" && t[1] == "GET":
		return t[2], needRead, true
	case len(t) >= 3 && t[0] == "CONSUMER" && t[1] == "CREATE":
		return t[2], needPullConsumer, true
	case len(t) == 5 && t[0] == "CONSUMER" && t[1] == "DURABLE" && t[2] == "CREATE":
		return t[3], needPullConsumer, true
	case len(t) == 4 && t[0] == "CONSUMER" && t[1] == "INFO":
		return t[2], needRead, true
	}
	return "", 0, false
}

func allowed(kind streamKind, need access) bool {
	switch kind {
	case streamReadable, streamMissing:
		return true
	case streamQueue:
		return need == needInfo
	}
	return false
}

// kind classifies a stream by its name and configuration, read at the time of the request:
// Flint's own streams are named FLINT_*, KV_* or OBJ_* and hold none of the public subjects.
func (p *proxy) kind(name string) streamKind {
	if name == "" || strings.HasPrefix(name, "FLINT_") || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_") {
		return streamPrivate
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := p.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return streamMissing
	}
	if err != nil {
		p.log.Warn("nats clients proxy: stream info", "stream", name, "err", err)
		return streamPrivate
	}
	cfg := st.CachedInfo().Config
	if len(cfg.Subjects) == 0 {
		return streamPrivate // a mirror or a stream of sources: not one of Flint's public kinds
	}
	for _, subj := range cfg.Subjects {
		public := false
		for _, prefix := range publicSubjects {
			public = public || strings.HasPrefix(subj, prefix)
		}
		if !public {
			return streamPrivate
		}
	}
	if cfg.Retention == jetstream.WorkQueuePolicy {
		return streamQueue
	}
	return streamReadable
}

// relay makes the request as Flint and passes the answer (body and status headers) back: a
// client's reply subject reaches here as a service reply, which only a responder may use.
func (p *proxy) relay(subject string, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: m.Data})
	if errors.Is(err, nats.ErrNoResponders) {
		out := nats.NewMsg(m.Reply)
		out.Header.Set("Status", "503")
		_ = p.nc.PublishMsg(out)
		return
	}
	if err != nil {
		p.log.Warn("nats clients proxy", "subject", subject, "err", err)
		p.refuse(m, fmt.Sprintf("%s: %v", subject, err))
		return
	}
	out := &nats.Msg{Subject: m.Reply, Header: resp.Header, Data: resp.Data}
	if err := p.nc.PublishMsg(out); err != nil {
		p.log.Warn("nats clients proxy: reply", "subject", subject, "err", err)
	}
}

// refuse answers with a JetStream API error, so a client fails at once instead of timing out.
func (p *proxy) refuse(m *nats.Msg, why string) {
	if m.Reply == "" {
		return
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": 403, "err_code": 10000, "description": why}})
	_ = p.nc.Publish(m.Reply, body)
}
