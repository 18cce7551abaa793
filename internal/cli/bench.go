package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"
)

// benchResult is what flint bench reports (and prints with --json).
type benchResult struct {
	Function       string  `json:"function"`
	Invokes        int     `json:"invokes"`
	Concurrency    int     `json:"concurrency"`
	FunctionErrors int     `json:"function_errors"`
	Failed         int     `json:"failed"`
	P50us          int64   `json:"p50_us"`
	P90us          int64   `json:"p90_us"`
	P99us          int64   `json:"p99_us"`
	MaxUs          int64   `json:"max_us"`
	PerSecond      float64 `json:"invokes_per_second"`
	Seconds        float64 `json:"seconds"`
}

func (a *app) benchCommand() *cobra.Command {
	var (
		payloadFile string
		qualifier   string
		concurrency int
		requests    int
		warmup      int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "bench NAME [JSON]",
		Short: "Measure a function's warm invoke latency and throughput",
		Long: "Invoke a function synchronously, --requests times from --concurrency clients, and print the\n" +
			"latency percentiles and throughput as an AWS SDK client sees them (client → Flint → runtime\n" +
			"→ client). --warmup invokes run first, at the same concurrency, so that the measured ones\n" +
			"find warm execution environments; they are not counted. Failed requests (throttles,\n" +
			"platform errors) are not retried: they are counted, and make the exit code 1. Function\n" +
			"errors are answers, counted apart.",
		Example: "  flint bench go-echo '{\"hi\":1}'\n" +
			"  flint bench go-echo -c 16 -n 20000 --json",
		Args: rangeArgs(1, 2, "function NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case concurrency < 1:
				return usageErrorf(cmd, "--concurrency must be at least 1")
			case requests < concurrency:
				return usageErrorf(cmd, "--requests must be at least --concurrency (%d)", concurrency)
			case warmup < 0:
				return usageErrorf(cmd, "--warmup must not be negative")
			}
			payload, err := a.eventArg(cmd, args[1:], payloadFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := a.awsConfig(ctx)
			if err != nil {
				return err
			}
			endpoint := a.endpoint
			client := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
				o.BaseEndpoint = aws.String(endpoint)
				o.HTTPClient = apiHTTPClient(concurrency)
				o.Retryer = aws.NopRetryer{} // a retry would hide a failure inside a latency
			})
			in := &lambda.InvokeInput{FunctionName: aws.String(args[0]), Payload: payload}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			invoke := func() (time.Duration, bool, error) {
				call := *in // each client its own input: the SDK does not promise not to touch it
				start := time.Now()
				out, err := client.Invoke(ctx, &call)
				if err != nil {
					return 0, false, err
				}
				return time.Since(start), out.FunctionError != nil, nil
			}
			// A first invoke on its own: a function that cannot be invoked at all is one error.
			if _, _, err := invoke(); err != nil {
				return err
			}
			// errorLine shows an AWS error without what wraps it: name the phase in the text.
			describe := func(err error) string { return strings.TrimPrefix(errorLine(err, endpoint), "flint: ") }
			if _, err := benchRun(warmup, concurrency, invoke); err != nil {
				return fmt.Errorf("warm-up at concurrency %d: %s", concurrency, describe(err))
			}
			r, err := benchRun(requests, concurrency, invoke)
			r.Function = args[0]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintf(a.stdout, "%s\n", b)
			} else {
				writeBench(a, r)
			}
			if err != nil {
				return fmt.Errorf("%d of %d invokes failed, the first with %s", r.Failed, requests, describe(err))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payloadFile, "payload-file", "", "read the event from this file (\"-\" for stdin)")
	f.StringVar(&qualifier, "qualifier", "", "version or alias to invoke")
	f.IntVarP(&concurrency, "concurrency", "c", 1, "clients invoking at once")
	f.IntVarP(&requests, "requests", "n", 1000, "invokes measured in total")
	f.IntVar(&warmup, "warmup", 100, "invokes sent first and not measured")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// benchRun makes n invokes from c goroutines and summarises them. Its error is the first failed
// invoke's (the others are counted in Failed).
func benchRun(n, c int, invoke func() (time.Duration, bool, error)) (benchResult, error) {
	r := benchResult{Concurrency: c}
	if n == 0 {
		return r, nil
	}
	var (
		left     atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	left.Store(int64(n))
	start := time.Now()
	for range c {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				d, fnErr, err := invoke()
				mu.Lock()
				switch {
				case err != nil:
					r.Failed++
					if firstErr == nil {
						firstErr = err
					}
				default:
					lat = append(lat, d)
					if fnErr {
						r.FunctionErrors++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.Invokes = len(lat)
	r.Seconds = elapsed.Seconds()
	r.PerSecond = float64(len(lat)) / elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) int64 { return lat[int(p*float64(len(lat)-1))].Microseconds() }
		r.P50us, r.P90us, r.P99us, r.MaxUs = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1].Microseconds()
	}
	return r, firstErr
}

func writeBench(a *app, r benchResult) {
	ms := func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }
	fmt.Fprintf(a.stdout, "%s: %d invokes at concurrency %d in %.2f s\n", r.Function, r.Invokes, r.Concurrency, r.Seconds)
	fmt.Fprintf(a.stdout, "  latency     p50 %s   p90 %s   p99 %s   max %s\n", ms(r.P50us), ms(r.P90us), ms(r.P99us), ms(r.MaxUs))
	fmt.Fprintf(a.stdout, "  throughput  %.0f invokes/s\n", r.PerSecond)
	fmt.Fprintf(a.stdout, "  function errors %d, failed invokes %d\n", r.FunctionErrors, r.Failed)
}
