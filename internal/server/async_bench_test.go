package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/benchfloor"
	"github.com/flint-run/flint/internal/config"
)

// BenchmarkAsyncEnqueue measures Event invokes accepted with 202: c keep-alive HTTP clients
// POST small events, each answered once JetStream has stored it. The function has reserved
// concurrency 0, so nothing runs; the queue's consumer still takes each event and settles it
// (straight to on-failure, of which there is none), as it would take events to run, so the
// figures include its share of the machine. durability=fsync flushes every write to disk
// before the 202; durability=os (the default) hands it to the operating system.
//
// The yardsticks are measured in the same run, before Flint, at the same concurrency
// (internal/benchfloor): the loopback floor (the same client against a bare HTTP server
// answering 202) and a JetStream publish waiting for its ack (file storage, same durability).
// Besides events/s, p50_us and p99_us it reports issue 18's ratios: x_combined (events/s ÷ the
// two floors' rates in series; target ≥ 0.8 at c=16), p50_x_floors (p50 ÷ the floors' p50s
// added; target ≤ 1.5 at c=1) and p99_x_jetstream (target ≤ 3 at c=16).
func BenchmarkAsyncEnqueue(b *testing.B) {
	for _, durability := range []string{"os", "fsync"} {
		b.Run("durability="+durability, func(b *testing.B) {
			s := startServer(b, b.TempDir(), func(c *config.Config) { c.Durability = durability })
			c := newClient(s.URL())
			createFunction(b, c, "sink", "python3.12", "app.handler",
				mustZip(b, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
			if _, err := c.PutFunctionConcurrency(context.Background(), &lambda.PutFunctionConcurrencyInput{
				FunctionName: aws.String("sink"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
				b.Fatal(err)
			}
			url := s.URL() + "/2015-03-31/functions/sink/invocations"
			for _, c := range []int{1, 16} {
				b.Run("c="+strconv.Itoa(c), func(b *testing.B) { loadEvents(b, url, c, durability == "fsync") })
			}
		})
	}
}

// loadEvents sends b.N Event invokes to url from c keep-alive clients and reports events/s, the
// p50/p99 time to the 202, and the ratios to the floors measured first (see
// BenchmarkAsyncEnqueue).
func loadEvents(b *testing.B, url string, c int, fsync bool) {
	b.Helper()
	ctx := context.Background()
	body := []byte(`{"hello":"world"}`)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c}}
	defer client.CloseIdleConnections()
	post := func(url string) func(context.Context) error {
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("X-Amz-Invocation-Type", "Event")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return errors.New("status " + resp.Status)
			}
			return nil
		}
	}
	const floorN = 5000
	floorURL, stop, err := benchfloor.Loopback()
	if err != nil {
		b.Fatal(err)
	}
	floor, err := benchfloor.Measure(ctx, c, floorN, post(floorURL))
	stop()
	if err != nil {
		b.Fatal(err)
	}
	js, err := benchfloor.JetStream(ctx, b.TempDir(), fsync, c, floorN, body)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := benchfloor.Measure(ctx, c, max(100, c), post(url)); err != nil { // warm-up: connections open, stream files created
		b.Fatal(err)
	}
	b.ResetTimer()
	r, err := benchfloor.Measure(ctx, c, max(b.N, c), post(url))
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
	b.ReportMetric(r.PerSecond, "events/s")
	b.ReportMetric(us(r.P50), "p50_us")
	b.ReportMetric(us(r.P99), "p99_us")
	b.ReportMetric(r.PerSecond/benchfloor.Combined(floor, js), "x_combined")
	b.ReportMetric(us(r.P50)/max(us(floor.P50+js.P50), 1), "p50_x_floors")
	b.ReportMetric(us(r.P99)/max(us(js.P99), 1), "p99_x_jetstream")
	b.Logf("floor %.0f/s p50 %v; JetStream %.0f/s p50 %v p99 %v", floor.PerSecond, floor.P50, js.PerSecond, js.P50, js.P99)
}

// BenchmarkAsyncEndToEnd measures, at low load (one event at a time, warm environment), the
// time from the client receiving the 202 to the function's handler running (p50_ms, p99_ms),
// and from the client sending the Event invoke to the handler running (sent_p50_ms).
//
// How it is timed: the handler's first statement reads time.time_ns() and writes it to a file
// named by its request id; the benchmark reads time.Now() as the 202's headers arrive. Both are
// the same host's CLOCK_REALTIME, read by processes on the same machine, so the difference is
// accurate to a few microseconds (far inside the 1 ms wanted) with no clock skew to correct. The
// file is written to a temporary name and renamed, so a half-written time is never read; how
// soon the benchmark notices the file does not matter, since the time is taken by the handler.
// A handler can start before the 202 reaches the client (the consumer is that quick): such a
// sample is negative and counted as such.
func BenchmarkAsyncEndToEnd(b *testing.B) {
	s := startServer(b, b.TempDir())
	c := newClient(s.URL())
	dir := b.TempDir()
	createFunction(b, c, "stamp", "python3.12", "app.handler", mustZip(b, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"def handler(event, context):\n" +
		"    t = time.time_ns()\n" +
		"    p = os.path.join(os.environ['OUT_DIR'], context.aws_request_id)\n" +
		"    with open(p + '.tmp', 'w') as f:\n" +
		"        f.write(str(t))\n" +
		"    os.rename(p + '.tmp', p)\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"OUT_DIR": dir}}
		})
	url := s.URL() + "/2015-03-31/functions/stamp/invocations"
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()

	// once sends one event and returns the time from its 202, and from its sending, to the
	// handler's start.
	once := func() (fromAccepted, fromSent time.Duration) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{}`)))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		sent := time.Now()
		resp, err := client.Do(req)
		accepted := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("X-Amzn-Requestid")
		if resp.StatusCode != http.StatusAccepted || id == "" {
			b.Fatalf("Event invoke: %s, request id %q", resp.Status, id)
		}
		path := filepath.Join(dir, id)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Microsecond) {
			t, err := os.ReadFile(path)
			if err == nil {
				ns, err := strconv.ParseInt(string(t), 10, 64)
				if err != nil {
					b.Fatalf("handler wrote %q", t)
				}
				ran := time.Unix(0, ns)
				return ran.Sub(accepted), ran.Sub(sent)
			}
			if time.Now().After(deadline) {
				b.Fatalf("event %s did not run within 30 s", id)
			}
		}
	}
	once() // cold start, not measured
	accepted := make([]time.Duration, 0, b.N)
	sent := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, s := once()
		accepted, sent = append(accepted, a), append(sent, s)
	}
	b.StopTimer()
	pct := func(lat []time.Duration, p float64) float64 {
		slices.Sort(lat)
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(accepted, 0.50), "p50_ms")
	b.ReportMetric(pct(accepted, 0.99), "p99_ms")
	b.ReportMetric(pct(sent, 0.50), "sent_p50_ms")
}
