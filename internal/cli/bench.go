package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/logs"
)

// benchResult is what flint bench reports (and prints with --json). Mode is warm, cold or
// burst; the cold and burst figures are present only in their modes.
type benchResult struct {
	Mode           string  `json:"mode"`
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
	*ColdFigures
	*BurstFigures
	*AsyncFigures
}

// ColdFigures say how many answers came from a new execution environment (their REPORT line has
// an Init Duration) and how long those INITs took. In --cold mode the latency percentiles are
// of the cold invokes only: a warm answer is counted in NotCold, never mixed in.
type ColdFigures struct {
	Cold      int   `json:"cold"`
	NotCold   int   `json:"not_cold"`
	InitP50us int64 `json:"init_p50_us"`
	InitP99us int64 `json:"init_p99_us"`
	InitMaxUs int64 `json:"init_max_us"`
}

// BurstFigures describe one burst: N invokes released at once from zero idle environments.
type BurstFigures struct {
	Burst int `json:"burst"`
	// AllAnsweredUs is the time from the release until the last of the N answered (or failed).
	AllAnsweredUs int64 `json:"all_answered_us"`
	// Throttled invokes (429) are counted apart from Failed: at a burst they are a result.
	Throttled int `json:"throttled"`
}

func (a *app) benchCommand() *cobra.Command {
	var (
		payloadFile string
		qualifier   string
		concurrency int
		requests    int
		warmup      int
		cold        bool
		pause       time.Duration
		burst       int
		async       bool
		durability  string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "bench NAME [JSON]",
		Short: "Measure a function's warm or cold invoke latency and throughput",
		Long: "Invoke a function synchronously, --requests times from --concurrency clients, and print the\n" +
			"latency percentiles and throughput as an AWS SDK client sees them (client → Flint → runtime\n" +
			"→ client). --warmup invokes run first, at the same concurrency, so that the measured ones\n" +
			"find warm execution environments; they are not counted. Failed requests (throttles,\n" +
			"platform errors) are not retried: they are counted, and make the exit code 1. Function\n" +
			"errors are answers, counted apart.\n\n" +
			"--cold measures cold starts, one at a time (--requests of them, 10 unless given): before each\n" +
			"invoke (not timed) the node that answers destroys the function's idle environments\n" +
			"(POST /flint/v1/functions/NAME/recycle; the configuration is not changed), so the invoke\n" +
			"starts a new one. Each answer's REPORT line (asked for with LogType Tail) must carry an Init\n" +
			"Duration: the latency and Init Duration percentiles are of those; an answer without one (a\n" +
			"provisioned environment, or on a cluster another node's warm one) is counted as not cold\n" +
			"and makes the exit code 1. The cold starts are --pause apart (250ms unless given, not timed),\n" +
			"as a function's cold starts are apart in real traffic: the pre-initialized runtimes Flint keeps\n" +
			"for Python and Node refill in between; --pause 0 measures cold starts back to back.\n\n" +
			"--async sends Event invokes (InvocationType Event) and times each until its 202, when Flint\n" +
			"has stored the event; the events then run as any others (give the function reserved\n" +
			"concurrency 0 to measure the enqueue alone). Two yardsticks are measured first, by this\n" +
			"command, at the same concurrency: the loopback floor (the same client against a bare HTTP\n" +
			"server answering 202) and a JetStream publish waiting for its ack (an embedded server with\n" +
			"file storage in a temporary directory; --durability fsync flushes each write, as the server\n" +
			"flag does: give your server's). The figures are printed beside them, as ratios.\n\n" +
			"--burst N releases N invokes at once from zero idle environments (recycled first, as for\n" +
			"--cold) over connections opened beforehand, and prints the time until all N answered, their\n" +
			"latency percentiles, how many were cold and the Init Durations; throttles are counted apart\n" +
			"(and, being a result at a burst, do not make the exit code 1).\n\n" +
			"The recycle reaches only the node that answers it: on a cluster, point --endpoint at one node\n" +
			"and expect invokes it forwards to another node's warm environment to show up as not cold.",
		Example: "  flint bench go-echo '{\"hi\":1}'\n" +
			"  flint bench go-echo -c 16 -n 20000 --json\n" +
			"  flint bench go-echo --cold -n 20\n" +
			"  flint bench go-echo --burst 16\n" +
			"  flint bench go-echo --async -c 16 -n 20000",
		Args: rangeArgs(1, 2, "function NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			switch {
			case cold && f.Changed("burst"), async && (cold || f.Changed("burst")):
				return usageErrorf(cmd, "--cold, --burst and --async are different measurements: give one")
			case !async && f.Changed("durability"):
				return usageErrorf(cmd, "--durability applies to --async only")
			case durability != "os" && durability != "fsync":
				return usageErrorf(cmd, "--durability must be os or fsync")
			case f.Changed("burst") && burst < 1:
				return usageErrorf(cmd, "--burst must be at least 1")
			case f.Changed("burst") && (f.Changed("concurrency") || f.Changed("requests") || f.Changed("warmup")):
				return usageErrorf(cmd, "--burst N sends N invokes at once: --concurrency, --requests and --warmup do not apply")
			case cold && concurrency != 1:
				return usageErrorf(cmd, "--cold measures one cold start at a time: --concurrency must be 1 (--burst N starts N at once)")
			case !cold && f.Changed("pause"):
				return usageErrorf(cmd, "--pause applies to --cold only")
			case pause < 0:
				return usageErrorf(cmd, "--pause must not be negative")
			case cold && f.Changed("warmup"):
				return usageErrorf(cmd, "--warmup does not apply to --cold")
			case concurrency < 1:
				return usageErrorf(cmd, "--concurrency must be at least 1")
			case requests < concurrency:
				return usageErrorf(cmd, "--requests must be at least --concurrency (%d)", concurrency)
			case warmup < 0:
				return usageErrorf(cmd, "--warmup must not be negative")
			}
			if cold && !f.Changed("requests") {
				requests = 10
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
			conns := concurrency
			if burst > 0 {
				conns = burst
			}
			client := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
				o.BaseEndpoint = aws.String(endpoint)
				o.HTTPClient = apiHTTPClient(conns)
				o.Retryer = aws.NopRetryer{} // a retry would hide a failure inside a latency
			})
			in := &lambda.InvokeInput{FunctionName: aws.String(args[0]), Payload: payload}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			// errorLine shows an AWS error without what wraps it: name the phase in the text.
			describe := func(err error) string { return strings.TrimPrefix(errorLine(err, endpoint), "flint: ") }
			b := &bencher{a: a, client: client, in: in, name: args[0], qualifier: qualifier, pause: pause}
			defer b.close()
			var r benchResult
			switch {
			case cold:
				r, err = b.cold(ctx, requests)
			case burst > 0:
				r, err = b.burst(ctx, burst)
			case async:
				r, err = b.async(ctx, requests, concurrency, warmup, durability == "fsync", conns, describe)
			default:
				r, err = b.warm(ctx, requests, concurrency, warmup, describe)
			}
			if r.Mode == "" { // nothing measured: the function cannot be benchmarked at all
				return err
			}
			r.Function = args[0]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if asJSON {
				out, _ := json.Marshal(r)
				fmt.Fprintf(a.stdout, "%s\n", out)
			} else {
				writeBench(a, r)
			}
			switch {
			case err != nil && r.Mode == "burst":
				return fmt.Errorf("%d of %d invokes failed, the first with %s", r.Failed, r.Burst, describe(err))
			case err != nil:
				return fmt.Errorf("%d of %d invokes failed, the first with %s", r.Failed, r.Invokes+r.Failed, describe(err))
			case r.Mode == "cold" && r.NotCold > 0:
				return fmt.Errorf("%d of %d invokes were not cold (no Init Duration in their REPORT line): a provisioned environment, or on a cluster another node's warm one, answered them; they are left out of the figures", r.NotCold, r.Invokes)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payloadFile, "payload-file", "", "read the event from this file (\"-\" for stdin)")
	f.StringVar(&qualifier, "qualifier", "", "version or alias to invoke")
	f.IntVarP(&concurrency, "concurrency", "c", 1, "clients invoking at once")
	f.IntVarP(&requests, "requests", "n", 1000, "invokes measured in total (--cold: 10)")
	f.IntVar(&warmup, "warmup", 100, "invokes sent first and not measured")
	f.BoolVar(&cold, "cold", false, "measure cold starts: each invoke on a new execution environment")
	f.DurationVar(&pause, "pause", 250*time.Millisecond, "--cold: the wait between cold starts, not timed")
	f.IntVar(&burst, "burst", 0, "measure N invokes released at once from zero idle environments")
	f.BoolVar(&async, "async", false, "measure Event invokes: the time to each 202, beside a loopback and a JetStream floor")
	f.StringVar(&durability, "durability", "os", "--async: the JetStream floor's durability, os or fsync (give your server's)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// bencher runs one flint bench measurement against one function.
type bencher struct {
	a               *app
	client          *lambda.Client
	in              *lambda.InvokeInput
	name, qualifier string
	recycler        *http.Client  // for the recycle endpoint, made on first use
	pause           time.Duration // between cold starts
}

// close lets go of the recycle client's connections.
func (b *bencher) close() {
	if b.recycler != nil {
		b.recycler.CloseIdleConnections()
	}
}

// warm is the classic measurement: a first invoke alone, --warmup, then n invokes from c clients.
func (b *bencher) warm(ctx context.Context, n, c, warmup int, describe func(error) string) (benchResult, error) {
	invoke := func() (time.Duration, bool, error) {
		call := *b.in // each client its own input: the SDK does not promise not to touch it
		start := time.Now()
		out, err := b.client.Invoke(ctx, &call)
		if err != nil {
			return 0, false, err
		}
		return time.Since(start), out.FunctionError != nil, nil
	}
	// A first invoke on its own: a function that cannot be invoked at all is one error.
	if _, _, err := invoke(); err != nil {
		return benchResult{}, err
	}
	if _, err := benchRun(warmup, c, invoke); err != nil {
		return benchResult{}, fmt.Errorf("warm-up at concurrency %d: %s", c, describe(err))
	}
	r, err := benchRun(n, c, invoke)
	r.Mode = "warm"
	return r, err
}

// coldAnswer is one invoke of a cold or burst measurement.
type coldAnswer struct {
	latency time.Duration
	cold    bool // the REPORT line has an Init Duration (0.00 ms counts: it is there)
	init    time.Duration
	fnErr   bool
	err     error
}

// tailInvoke invokes once with the log tail and reads the REPORT line's Init Duration.
func (b *bencher) tailInvoke(ctx context.Context) coldAnswer {
	call := *b.in
	call.LogType = types.LogTypeTail
	start := time.Now()
	out, err := b.client.Invoke(ctx, &call)
	if err != nil {
		return coldAnswer{err: err}
	}
	d := time.Since(start)
	init, cold := initDuration(aws.ToString(out.LogResult))
	return coldAnswer{latency: d, cold: cold, init: init, fnErr: out.FunctionError != nil}
}

// cold makes n invokes one after the other, each after a recycle (not timed).
func (b *bencher) cold(ctx context.Context, n int) (benchResult, error) {
	// The function exists and a connection is open before anything is timed.
	if err := b.ready(ctx, 1); err != nil {
		return benchResult{}, err
	}
	answers := make([]coldAnswer, 0, n)
	var spent time.Duration // invoking only, recycles left out
	for i := range n {
		if i > 0 && b.pause > 0 {
			select {
			case <-time.After(b.pause):
			case <-ctx.Done():
			}
		}
		if _, err := b.recycle(ctx); err != nil {
			return benchResult{}, err
		}
		ans := b.tailInvoke(ctx)
		answers = append(answers, ans)
		spent += ans.latency
		if ctx.Err() != nil {
			break
		}
	}
	r, err := summarizeCold(answers, true)
	r.Mode, r.Concurrency = "cold", 1
	r.Seconds = spent.Seconds()
	if spent > 0 {
		r.PerSecond = float64(r.Cold) / spent.Seconds()
	}
	return r, err
}

// burst releases n invokes at once from zero idle environments.
func (b *bencher) burst(ctx context.Context, n int) (benchResult, error) {
	// Up to n connections are opened (n concurrent reads) before the burst, so that the n
	// invokes do not queue behind TCP handshakes; then the environments are recycled.
	if err := b.ready(ctx, n); err != nil {
		return benchResult{}, err
	}
	if _, err := b.recycle(ctx); err != nil {
		return benchResult{}, err
	}
	answers := make([]coldAnswer, n)
	var (
		wg      sync.WaitGroup
		release = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-release
			answers[i] = b.tailInvoke(ctx)
		})
	}
	start := time.Now()
	close(release)
	wg.Wait()
	all := time.Since(start)
	r, err := summarizeCold(answers, false)
	r.Mode, r.Concurrency = "burst", n
	r.Seconds = all.Seconds()
	r.PerSecond = float64(r.Invokes) / all.Seconds()
	r.BurstFigures.Burst, r.BurstFigures.AllAnsweredUs = n, all.Microseconds()
	return r, err
}

// ready checks that the function exists (ResourceNotFoundException comes from here, as from
// Invoke) and leaves conns connections open to Flint for the measured invokes.
func (b *bencher) ready(ctx context.Context, conns int) error {
	in := &lambda.GetFunctionConfigurationInput{FunctionName: b.in.FunctionName, Qualifier: b.in.Qualifier}
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			_, errs[i] = b.client.GetFunctionConfiguration(ctx, in)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the others are alike
		}
	}
	return nil
}

// summarizeCold sums up cold or burst answers. coldOnly: the latency percentiles are of the
// cold answers only (--cold); else of every answer (a burst's N).
func summarizeCold(answers []coldAnswer, coldOnly bool) (benchResult, error) {
	r := benchResult{ColdFigures: &ColdFigures{}}
	if !coldOnly {
		r.BurstFigures = &BurstFigures{}
	}
	var lat, inits []time.Duration
	var firstErr error
	for _, ans := range answers {
		switch {
		case ans.err != nil && !coldOnly && httpStatus(ans.err) == http.StatusTooManyRequests:
			r.Throttled++
		case ans.err != nil:
			r.Failed++
			if firstErr == nil {
				firstErr = ans.err
			}
		default:
			r.Invokes++
			if ans.fnErr {
				r.FunctionErrors++
			}
			if ans.cold {
				r.Cold++
				inits = append(inits, ans.init)
			} else {
				r.NotCold++
			}
			if ans.cold || !coldOnly {
				lat = append(lat, ans.latency)
			}
		}
	}
	r.P50us, r.P90us, r.P99us, r.MaxUs = percentiles(lat)
	r.InitP50us, _, r.InitP99us, r.InitMaxUs = percentiles(inits)
	return r, firstErr
}

// percentiles are the p50, p90, p99 and max of d in µs (0 for none); d is sorted.
func percentiles(d []time.Duration) (p50, p90, p99, max int64) {
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	pct := func(p float64) int64 { return d[int(p*float64(len(d)-1))].Microseconds() }
	return pct(0.50), pct(0.90), pct(0.99), d[len(d)-1].Microseconds()
}

// initDuration reads the Init Duration of the report in an invoke's log tail (LogResult, base64):
// present only when the invocation ran on a new execution environment. Its presence is what
// counts: a very fast INIT is printed as 0.00 ms.
func initDuration(logResult string) (time.Duration, bool) {
	raw, err := base64.StdEncoding.DecodeString(logResult)
	if err != nil {
		return 0, false
	}
	r, ok := logs.ParseReport(raw)
	if !ok || !r.Cold || r.InitDurationMs < 0 {
		return 0, false
	}
	return time.Duration(r.InitDurationMs * float64(time.Millisecond)), true
}

// recycleAnswer is POST /flint/v1/functions/NAME/recycle's answer.
type recycleAnswer struct {
	Retired     int `json:"retired"`
	Busy        int `json:"busy"`
	Starting    int `json:"starting"`
	Provisioned int `json:"provisioned"`
}

// recycle asks the node that answers to destroy the function's idle environments.
func (b *bencher) recycle(ctx context.Context) (recycleAnswer, error) {
	if b.recycler == nil {
		c, err := b.a.flintHTTPClient(ctx, apiTimeout)
		if err != nil {
			return recycleAnswer{}, err
		}
		b.recycler = c
	}
	u := b.a.endpoint + "/flint/v1/functions/" + url.PathEscape(b.name) + "/recycle"
	if b.qualifier != "" {
		u += "?Qualifier=" + url.QueryEscape(b.qualifier)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return recycleAnswer{}, err
	}
	resp, err := b.recycler.Do(req)
	if err != nil {
		return recycleAnswer{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return recycleAnswer{}, responseError(resp)
	}
	var out recycleAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return recycleAnswer{}, fmt.Errorf("decode the recycle answer: %w", err)
	}
	return out, nil
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
	r.P50us, r.P90us, r.P99us, r.MaxUs = percentiles(lat)
	return r, firstErr
}

func writeBench(a *app, r benchResult) {
	ms := func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }
	switch r.Mode {
	case "cold":
		fmt.Fprintf(a.stdout, "%s: %d cold invokes, one at a time, each on a new execution environment\n", r.Function, r.Cold)
	case "burst":
		fmt.Fprintf(a.stdout, "%s: burst of %d invokes at once from zero idle environments, all answered in %s\n", r.Function, r.Burst, ms(r.AllAnsweredUs))
	case "async":
		fmt.Fprintf(a.stdout, "%s: %d Event invokes at concurrency %d in %.2f s, each timed until its 202\n", r.Function, r.Invokes, r.Concurrency, r.Seconds)
	default:
		fmt.Fprintf(a.stdout, "%s: %d invokes at concurrency %d in %.2f s\n", r.Function, r.Invokes, r.Concurrency, r.Seconds)
	}
	measured := r.Invokes > 0
	if r.Mode == "cold" {
		measured = r.Cold > 0
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tp50\tp90\tp99\tmax\t\n")
	switch {
	case !measured: // no figures rather than zeros
		fmt.Fprintf(tw, "latency\t-\t-\t-\t-\t\n")
	default:
		fmt.Fprintf(tw, "latency\t%s\t%s\t%s\t%s\t\n", ms(r.P50us), ms(r.P90us), ms(r.P99us), ms(r.MaxUs))
	}
	switch {
	case r.ColdFigures == nil:
	case r.Cold == 0:
		fmt.Fprintf(tw, "init duration\t-\t\t-\t-\t\n")
	default:
		fmt.Fprintf(tw, "init duration\t%s\t\t%s\t%s\t\n", ms(r.InitP50us), ms(r.InitP99us), ms(r.InitMaxUs))
	}
	_ = tw.Flush()
	switch r.Mode {
	case "cold":
		fmt.Fprintf(a.stdout, "  cold %d of %d answers (not cold %d, left out); function errors %d, failed invokes %d\n",
			r.Cold, r.Invokes, r.NotCold, r.FunctionErrors, r.Failed)
	case "burst":
		fmt.Fprintf(a.stdout, "  answered %d of %d: cold %d, warm %d; throttled %d, failed %d; function errors %d\n",
			r.Invokes, r.Burst, r.Cold, r.NotCold, r.Throttled, r.Failed, r.FunctionErrors)
	case "async":
		af := r.AsyncFigures
		fmt.Fprintf(a.stdout, "  throughput  %.0f events/s; failed invokes %d\n", r.PerSecond, r.Failed)
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 3, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "yardstick (same run)\tevents/s\tp50\tp99\tFlint's ratio\t\n")
		fmt.Fprintf(tw, "loopback floor\t%.0f\t%s\t\t\t\n", af.FloorPerSecond, ms(af.FloorP50us))
		fmt.Fprintf(tw, "JetStream publish (%s)\t%.0f\t%s\t%s\tp99 %.2f×\t\n", af.Durability, af.JSPerSecond, ms(af.JSP50us), ms(af.JSP99us), af.P99RatioJetStream)
		fmt.Fprintf(tw, "both, in series\t%.0f\t%s\t\trate %.2f×, p50 %.2f×\t\n", af.CombinedPerSec, ms(af.FloorP50us+af.JSP50us), af.RateRatio, af.P50Ratio)
		_ = tw.Flush()
	default:
		fmt.Fprintf(a.stdout, "  throughput  %.0f invokes/s\n", r.PerSecond)
		fmt.Fprintf(a.stdout, "  function errors %d, failed invokes %d\n", r.FunctionErrors, r.Failed)
	}
}
