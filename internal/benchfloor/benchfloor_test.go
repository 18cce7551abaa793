package benchfloor

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestJetStreamAndLoopback(t *testing.T) {
	ctx := context.Background()
	js, err := JetStream(ctx, t.TempDir(), false, 4, 400, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if js.N != 400 || js.PerSecond <= 0 || js.P50 <= 0 || js.P99 < js.P50 {
		t.Fatalf("JetStream: %+v", js)
	}
	url, stop, err := Loopback()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	lb, err := Measure(ctx, 2, 200, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := Combined(lb, js); c <= 0 || c > min(lb.PerSecond, js.PerSecond) {
		t.Fatalf("combined %v of %v and %v", c, lb.PerSecond, js.PerSecond)
	}
}

func TestMeasureStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	_, err := Measure(context.Background(), 1, 100, func(context.Context) error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}
