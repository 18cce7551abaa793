package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
)

// BenchmarkESMStream measures a stream event source mapping feeding a no-op Python function
// (warm) with BatchSize 100 and no batching window. A record counts as done when the mapping's
// checkpoint, written after the function returned, passes it (watched on the checkpoint bucket).
//
//   - throughput: b.N records published first, then the mapping reads them from TRIM_HORIZON:
//     records/s from the mapping's creation until the last one is checkpointed.
//   - latency: one record at a time, p50/p99 from the publish to its checkpoint.
func BenchmarkESMStream(b *testing.B) {
	s := startServer(b, b.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(b, c, "noop", "python3.12", "app.handler",
		mustZip(b, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return None\n"}}))
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("noop")}); err != nil { // warm
		b.Fatal(err)
	}
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// Checkpoints and stream creation are Flint's own, out of outside clients' reach.
	internal := s.JetStream()
	kv, err := internal.KeyValue(ctx, "flint_esm_checkpoints")
	if err != nil {
		b.Fatal(err)
	}
	run := 0
	streamName := func() string { run++; return fmt.Sprintf("bench%d", run) } // a stream per sub-run
	// mapStream maps stream name to the function; reached returns a channel closed once the
	// mapping's checkpoint passes seq.
	mapStream := func(b *testing.B, name string) func(seq uint64) <-chan struct{} {
		out, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
			EventSourceArn: aws.String(streamArn + name), FunctionName: aws.String("noop"),
			StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(100)})
		if err != nil {
			b.Fatal(err)
		}
		id := aws.ToString(out.UUID)
		b.Cleanup(func() {
			_, _ = c.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(id)})
		})
		w, err := kv.Watch(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = w.Stop() })
		reached := func(seq uint64) <-chan struct{} {
			done := make(chan struct{})
			go func() {
				defer close(done)
				for e := range w.Updates() {
					if e == nil {
						continue
					}
					var cp struct{ Lanes []uint64 }
					if json.Unmarshal(e.Value(), &cp) == nil && len(cp.Lanes) > 0 && cp.Lanes[0] >= seq {
						return
					}
				}
			}()
			return done
		}
		return reached
	}

	b.Run("throughput/batch=100", func(b *testing.B) {
		name := streamName()
		if _, err := internal.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"flint.streams." + name + ".>"}}); err != nil {
			b.Fatal(err)
		}
		for i := range b.N {
			if _, err := js.PublishAsync(fmt.Sprintf("flint.streams.%s.k%d", name, i%20), []byte(`{"n":1}`), stallWait); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		if n := js.PublishAsyncPending(); n != 0 {
			b.Fatalf("%d records not published", n)
		}
		b.ResetTimer()
		start := time.Now()
		reached := mapStream(b, name)
		select {
		case <-reached(uint64(b.N)):
		case <-time.After(5 * time.Minute):
			b.Fatal("records not processed within 5 minutes")
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	})

	b.Run("latency", func(b *testing.B) {
		name := streamName()
		reached := mapStream(b, name)
		var lat []time.Duration
		for i := range b.N {
			start := time.Now()
			ack, err := js.Publish(ctx, fmt.Sprintf("flint.streams.%s.k%d", name, i%20), []byte(`{"n":1}`))
			if err != nil {
				b.Fatal(err)
			}
			select {
			case <-reached(ack.Sequence):
			case <-time.After(time.Minute):
				b.Fatal("record not processed within a minute")
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})
}
