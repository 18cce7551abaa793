package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/sigv4"
)

// TestBenchRun: exactly n invokes from c clients; failures and function errors are counted
// apart, the first failure is returned, and the percentiles come from the successful ones.
func TestBenchRun(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	r, err := benchRun(100, 7, func() (time.Duration, bool, error) {
		k := calls.Add(1)
		switch {
		case k%10 == 0:
			return 0, false, boom
		case k%5 == 0:
			return time.Duration(k) * time.Millisecond, true, nil
		}
		return time.Duration(k) * time.Millisecond, false, nil
	})
	if calls.Load() != 100 {
		t.Errorf("%d invokes, want 100", calls.Load())
	}
	if !errors.Is(err, boom) || r.Failed != 10 || r.FunctionErrors != 10 || r.Invokes != 90 || r.Concurrency != 7 {
		t.Errorf("benchRun = %+v, %v; want 90 invokes, 10 failed, 10 function errors, error boom", r, err)
	}
	if !(r.P50us <= r.P90us && r.P90us <= r.P99us && r.P99us <= r.MaxUs) || r.MaxUs != 99_000 || r.PerSecond <= 0 {
		t.Errorf("percentiles p50 %d p90 %d p99 %d max %d (want ordered, max 99000 µs), %.0f/s", r.P50us, r.P90us, r.P99us, r.MaxUs, r.PerSecond)
	}
	if r, err := benchRun(0, 3, nil); err != nil || r.Invokes != 0 {
		t.Errorf("no invokes: %+v, %v", r, err)
	}
}

// TestInitDuration reads the Init Duration of an invoke's log tail: only the REPORT line's,
// only when present.
func TestInitDuration(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const start = "START RequestId: r1 Version: $LATEST\nInit Duration: 9.99 ms (printed by the function)\nEND RequestId: r1\n"
	tests := []struct {
		name   string
		tail   string
		want   time.Duration
		wantOK bool
	}{
		{"cold", b64(start + "REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 430.47 ms\t\n"),
			430470 * time.Microsecond, true},
		{"cold, failed", b64("REPORT RequestId: r1\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 12.00 ms\tStatus: error\tError Type: Runtime.ExitError\t\n"),
			12 * time.Millisecond, true},
		{"cold, a very fast INIT", b64(start + "REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 0.00 ms\t\n"),
			0, true},
		{"warm: the function's own line does not count", b64(start + "REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t\n"), 0, false},
		{"no REPORT line", b64(start), 0, false},
		{"empty", "", 0, false},
		{"not base64", "REPORT RequestId: r1\tInit Duration: 5.00 ms\t", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := initDuration(tt.tail)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("initDuration = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestBenchColdAndBurstAgainstServer runs flint bench --cold and --burst against a real Flint
// with an access key (so the recycle endpoint's calls are signed and checked), on the real
// go-echo example and a Python function, and the recycle endpoint itself: unsigned refused,
// unknown function ResourceNotFoundException, a busy environment left to finish its invocation.
func TestBenchColdAndBurstAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	data := t.TempDir()
	keys, err := sigv4.Load(filepath.Join(data, "access-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Create("bench test")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", key.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", key.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	s, _ := startServer(t, ctx, func(c *config.Config) { c.DataDir = data })
	if s.DevMode() {
		t.Fatal("a server with an access key runs in development mode")
	}
	for _, args := range [][]string{
		{"deploy", filepath.Join("..", "..", "examples", "go-echo"), "--name", "echo", "--runtime", "provided.al2023"},
		{"deploy", filepath.Join("..", "..", "examples", "python-hello"), "--name", "py", "--runtime", "python3.12", "--handler", "app.handler"},
	} {
		if code, out, errOut := runCLI(t, ctx, args...); code != 0 {
			t.Fatalf("flint %s: exit %d, %s %s", strings.Join(args, " "), code, out, errOut)
		}
	}

	bench := func(t *testing.T, args ...string) benchResult {
		t.Helper()
		code, out, errOut := runCLI(t, ctx, append([]string{"bench"}, append(args, "--json")...)...)
		var r benchResult
		if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
			t.Fatalf("flint bench %s: exit %d, stdout %q (%v), stderr %q", strings.Join(args, " "), code, out, err, errOut)
		}
		return r
	}
	t.Run("cold", func(t *testing.T) {
		for _, fn := range []string{"echo", "py"} {
			r := bench(t, fn, "--cold", "-n", "3")
			if r.Mode != "cold" || r.ColdFigures == nil || r.Invokes != 3 || r.Cold != 3 || r.NotCold != 0 || r.Failed != 0 || r.FunctionErrors != 0 {
				t.Fatalf("%s: %+v %+v; want 3 cold invokes", fn, r, r.ColdFigures)
			}
			if !(0 <= r.InitP50us && r.InitP50us <= r.InitP99us && r.InitP99us <= r.InitMaxUs && r.InitMaxUs <= r.MaxUs && r.P50us > 0) {
				t.Errorf("%s: init p50 %d p99 %d max %d µs, latency p50 %d max %d µs: want them ordered, within the latency",
					fn, r.InitP50us, r.InitP99us, r.InitMaxUs, r.P50us, r.MaxUs)
			}
		}
		code, out, errOut := runCLI(t, ctx, "bench", "py", "--cold", "-n", "2")
		if code != 0 || !strings.Contains(out, "py: 2 cold invokes, one at a time") || !strings.Contains(out, "init duration") ||
			!strings.Contains(out, "cold 2 of 2 answers (not cold 0, left out)") {
			t.Errorf("bench --cold: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("burst", func(t *testing.T) {
		// Each invoke sleeps 300 ms: none can finish and be reused by another of the burst.
		r := bench(t, "echo", `{"sleep_ms":300}`, "--burst", "8")
		if r.Mode != "burst" || r.BurstFigures == nil || r.ColdFigures == nil {
			t.Fatalf("%+v: want burst and cold figures", r)
		}
		if r.Burst != 8 || r.Invokes != 8 || r.Cold != 8 || r.NotCold != 0 || r.Throttled != 0 || r.Failed != 0 {
			t.Errorf("burst 8: %+v %+v %+v; want 8 answered, 8 cold", r, r.ColdFigures, r.BurstFigures)
		}
		if r.AllAnsweredUs < r.MaxUs || r.MaxUs < 300_000 || r.InitMaxUs > r.MaxUs {
			t.Errorf("all answered in %d µs, max %d µs, init max %d µs: want all ≥ max ≥ 300 ms ≥ init", r.AllAnsweredUs, r.MaxUs, r.InitMaxUs)
		}
		code, out, errOut := runCLI(t, ctx, "bench", "echo", "--burst", "2")
		if code != 0 || !strings.Contains(out, "echo: burst of 2 invokes at once from zero idle environments, all answered in ") ||
			!strings.Contains(out, "answered 2 of 2: cold ") {
			t.Errorf("bench --burst: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("recycle endpoint", func(t *testing.T) {
		recycleURL := func(name string) string { return s.URL() + "/flint/v1/functions/" + name + "/recycle" }
		resp, err := http.Post(recycleURL("py"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned recycle: %s %s; want 403 MissingAuthenticationTokenException", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
		}
		b := &bencher{a: &app{endpoint: s.URL()}, name: "nope"}
		defer b.close()
		if _, err := b.recycle(ctx); !regexp.MustCompile(`^flint: ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:\d{12}:function:nope$`).
			MatchString(errorLine(err, s.URL())) {
			t.Errorf("recycle of an unknown function: %v", err)
		}

		// One environment busy for 2 s, another idle: the recycle destroys only the idle one,
		// and the busy one answers its invocation and stays.
		c, err := (&app{endpoint: s.URL()}).lambdaClient(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b.name = "py"
		if _, err := b.recycle(ctx); err != nil {
			t.Fatal(err)
		}
		slow := make(chan error, 1)
		go func() {
			// Not retried: a ServiceException (the environment destroyed under it) must show.
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("py"), Payload: []byte(`{"sleep_ms":2000}`)},
				func(o *lambda.Options) { o.Retryer = aws.NopRetryer{} })
			if err == nil && (out.FunctionError != nil || !strings.Contains(string(out.Payload), "hello from python")) {
				err = fmt.Errorf("answer %q, function error %v", out.Payload, aws.ToString(out.FunctionError))
			}
			slow <- err
		}()
		for deadline := time.Now().Add(time.Minute); s.Workers().Stats().Busy != 1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the slow invoke never got an environment")
			}
		}
		if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("py")}); err != nil {
			t.Fatal(err)
		}
		got, err := b.recycle(ctx)
		if want := (recycleAnswer{Retired: 1, Busy: 1}); err != nil || got != want {
			t.Errorf("recycle with one busy and one idle environment: %+v, %v; want %+v", got, err, want)
		}
		if err := <-slow; err != nil {
			t.Errorf("the invocation on the busy environment: %v; want its answer", err)
		}
		// The environment that ran it is still there, idle.
		if got, err := b.recycle(ctx); err != nil || got != (recycleAnswer{Retired: 1}) {
			t.Errorf("recycle after the slow invoke: %+v, %v; want its environment retired now", got, err)
		}
	})
}
