package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Collector is a loopback HTTP endpoint functions report to: every POST's body is kept, in
// arrival order. A process-sandbox function reaches it (give it the URL in an environment
// variable), so a test counts what functions really ran, independently of what Flint says.
type Collector struct {
	URL string

	mu      sync.Mutex
	records []Posted
}

// Posted is one POST a Collector received.
type Posted struct {
	At   time.Time
	Body []byte
}

// NewCollector starts a Collector, closed when the test ends.
func NewCollector(t testing.TB) *Collector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{URL: "http://" + l.Addr().String() + "/"}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return c
}

func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.records = append(c.records, Posted{At: time.Now(), Body: b})
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Records returns what was posted so far.
func (c *Collector) Records() []Posted {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Posted(nil), c.records...)
}

// Len is how many POSTs arrived.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// NATS connects an outside NATS client to node i (its --nats-listen port, the cluster's
// token): what it may do is what Flint opens to outside clients (event-source publishes, reads
// of event-source and destination streams). Closed when the test ends.
func (c *Cluster) NATS(t testing.TB, i int) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.Nodes[i].NATSURL, nats.Token(c.NATSToken), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %s's NATS: %v", c.Nodes[i].Name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamReader reads a JetStream stream (a destination or an event source) from its first
// message on, through whichever live node answers, by sequence number, so it keeps its place
// across a node's death.
type StreamReader struct {
	c      *Cluster
	stream string
	next   uint64
	nc     *nats.Conn
	node   int
}

// ReadStream returns a reader of stream from its first message.
func (c *Cluster) ReadStream(stream string) *StreamReader {
	return &StreamReader{c: c, stream: stream, next: 1, node: -1}
}

// Read returns the messages stored since the last Read (none, without error, while the stream
// does not exist yet). On an error the next Read tries another live node.
func (r *StreamReader) Read(ctx context.Context) ([]*jetstream.RawStreamMsg, error) {
	if r.nc == nil || !r.c.Alive(r.node) || !r.nc.IsConnected() {
		if r.nc != nil {
			r.nc.Close()
			r.nc = nil
		}
		live := r.c.Live()
		if len(live) == 0 {
			return nil, errors.New("no node is running")
		}
		r.node = live[0]
		nc, err := nats.Connect(r.c.Nodes[r.node].NATSURL, nats.Token(r.c.NATSToken), nats.Timeout(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("connect to %s's NATS: %w", r.c.Nodes[r.node].Name, err)
		}
		r.nc = nc
	}
	msgs, err := r.read(ctx)
	if err != nil {
		r.nc.Close()
		r.nc = nil
	}
	return msgs, err
}

func (r *StreamReader) read(ctx context.Context) ([]*jetstream.RawStreamMsg, error) {
	js, err := jetstream.New(r.nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, r.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s through %s: %w", r.stream, r.c.Nodes[r.node].Name, err)
	}
	state := st.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for ; r.next <= state.LastSeq; r.next++ {
		m, err := st.GetMsg(ctx, r.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if r.next < state.FirstSeq {
				continue // deleted from the front (limits, a purge)
			}
			// A sequence the stream had when asked: stored, so not found only while its leader
			// changes. Read again from here next time rather than skip a record for good.
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("stream %s message %d through %s: %w", r.stream, r.next, r.c.Nodes[r.node].Name, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Close closes the reader's connection.
func (r *StreamReader) Close() {
	if r.nc != nil {
		r.nc.Close()
		r.nc = nil
	}
}
