package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/benchfloor"
)

// AsyncFigures put an --async measurement beside its yardsticks, measured by the same command
// just before it: the loopback floor (the same client and concurrency against a bare HTTP
// server answering 202) and a JetStream publish waiting for its ack (an embedded server, file
// storage, no HTTP). An Event invoke's 202 needs both, so the rate is compared with their
// rates combined in series, the p50 with the sum of their p50s and the p99 with JetStream's.
type AsyncFigures struct {
	Durability        string  `json:"durability"` // of the JetStream floor: os or fsync
	FloorPerSecond    float64 `json:"floor_per_second"`
	FloorP50us        int64   `json:"floor_p50_us"`
	JSPerSecond       float64 `json:"jetstream_per_second"`
	JSP50us           int64   `json:"jetstream_p50_us"`
	JSP99us           int64   `json:"jetstream_p99_us"`
	CombinedPerSec    float64 `json:"combined_per_second"`
	RateRatio         float64 `json:"rate_ratio"`          // Flint's events/s ÷ combined
	P50Ratio          float64 `json:"p50_ratio"`           // Flint's p50 ÷ (floor p50 + JetStream p50)
	P99RatioJetStream float64 `json:"p99_ratio_jetstream"` // Flint's p99 ÷ JetStream's p99
}

// async measures Event invokes: the floors first, then --warmup and n events from c clients,
// each timed until its 202 (JetStream holds the event). The events run afterwards as any
// others: give the function reserved concurrency 0 to measure the enqueue alone.
func (b *bencher) async(ctx context.Context, n, c, warmup int, fsync bool, conns int, describe func(error) string) (benchResult, error) {
	event := func(client *lambda.Client) func() (time.Duration, bool, error) {
		return func() (time.Duration, bool, error) {
			call := *b.in
			call.InvocationType = types.InvocationTypeEvent
			start := time.Now()
			if _, err := client.Invoke(ctx, &call); err != nil {
				return 0, false, err
			}
			return time.Since(start), false, nil
		}
	}
	flint := event(b.client)
	if _, _, err := flint(); err != nil { // a function that cannot take events at all: one error
		return benchResult{}, err
	}

	// The loopback floor, through a copy of the same client (same signing, same transport
	// settings) pointed at a bare server.
	url, stop, err := benchfloor.Loopback()
	if err != nil {
		return benchResult{}, err
	}
	floorClient := lambda.New(b.client.Options(), func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(url)
		o.HTTPClient = apiHTTPClient(conns)
	})
	floor, err := benchRun(n, c, event(floorClient))
	stop()
	if err != nil {
		return benchResult{}, fmt.Errorf("loopback floor: %w", err)
	}
	dir, err := os.MkdirTemp("", "flint-bench-jetstream-")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	js, err := benchfloor.JetStream(ctx, dir, fsync, c, n, b.in.Payload)
	if err != nil {
		return benchResult{}, fmt.Errorf("JetStream floor: %w", err)
	}

	if _, err := benchRun(warmup, c, flint); err != nil {
		return benchResult{}, fmt.Errorf("warm-up at concurrency %d: %s", c, describe(err))
	}
	r, err := benchRun(n, c, flint)
	r.Mode = "async"
	af := &AsyncFigures{Durability: "os", FloorPerSecond: floor.PerSecond, FloorP50us: floor.P50us,
		JSPerSecond: js.PerSecond, JSP50us: js.P50.Microseconds(), JSP99us: js.P99.Microseconds()}
	if fsync {
		af.Durability = "fsync"
	}
	af.CombinedPerSec = benchfloor.Combined(benchfloor.Result{PerSecond: floor.PerSecond}, js)
	if af.CombinedPerSec > 0 {
		af.RateRatio = r.PerSecond / af.CombinedPerSec
	}
	if sum := af.FloorP50us + af.JSP50us; sum > 0 {
		af.P50Ratio = float64(r.P50us) / float64(sum)
	}
	if af.JSP99us > 0 {
		af.P99RatioJetStream = float64(r.P99us) / float64(af.JSP99us)
	}
	r.AsyncFigures = af
	return r, err
}
