// Package benchfloor measures the yardsticks of Flint's asynchronous enqueue in the caller's own
// process and sitting: a bare loopback HTTP round trip (the least an API can do per request) and
// a JetStream publish that waits for its ack (the least a durable enqueue can do: the same
// embedded server and file storage Flint uses, no HTTP). An Event invoke's 202 needs both, so
// Combined (their rates added as a series) is what Flint's rate is compared with. These are
// the figures of ../shared/bench's floor.sh and jsfloor, made here so that `flint bench --async`
// and BenchmarkAsyncEnqueue report them beside Flint's from the same run.
package benchfloor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Result is one measurement: n operations from c workers.
type Result struct {
	N, C      int
	PerSecond float64
	P50, P99  time.Duration
}

// Combined is the rate of doing one operation of a and then one of b, each at its measured rate:
// the yardstick for work that needs both.
func Combined(a, b Result) float64 {
	if a.PerSecond <= 0 || b.PerSecond <= 0 {
		return 0
	}
	return 1 / (1/a.PerSecond + 1/b.PerSecond)
}

// Measure runs op n times from c workers at once and times each call. The first error stops
// the measurement and is returned.
func Measure(ctx context.Context, c, n int, op func(ctx context.Context) error) (Result, error) {
	if c < 1 || n < c {
		return Result{}, fmt.Errorf("benchfloor: %d operations from %d workers", n, c)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := op(ctx); err != nil {
					cancel(err)
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return Result{}, err
	}
	slices.Sort(lat)
	return Result{N: n, C: c, PerSecond: float64(n) / wall.Seconds(),
		P50: lat[(n-1)/2], P99: lat[int(0.99*float64(n-1))]}, nil
}

// Loopback answers 202 with an empty body, as an Event invoke's answer, on 127.0.0.1; it
// returns the server's URL and a function that stops it. The caller measures it with the same
// client it measures Flint with, so that the client's own cost is in both figures.
func Loopback() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("benchfloor: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// JetStream measures n publishes of payload, each waiting for its ack, from c publishers, to a
// file-stored work-queue stream of an embedded JetStream server with its store in dir (fsync:
// every write flushed to disk before its ack, as Flint's --durability fsync) over an in-process
// connection.
func JetStream(ctx context.Context, dir string, fsync bool, c, n int, payload []byte) (Result, error) {
	s, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, DontListen: true, SyncAlways: fsync,
		NoSigs: true, NoLog: true})
	if err != nil {
		return Result{}, fmt.Errorf("benchfloor: %w", err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		return Result{}, errors.New("benchfloor: embedded JetStream server not ready in 10s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		return Result{}, fmt.Errorf("benchfloor: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Result{}, fmt.Errorf("benchfloor: %w", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "Q", Subjects: []string{"q.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}); err != nil {
		return Result{}, fmt.Errorf("benchfloor: %w", err)
	}
	return Measure(ctx, c, n, func(ctx context.Context) error {
		_, err := js.Publish(ctx, "q.fn", payload)
		return err
	})
}
