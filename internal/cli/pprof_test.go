package cli

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestServePprofLoopbackOnly: the profiler (the hidden serve --pprof flag) is refused on any
// address but loopback, so it cannot be opened to the network, and served there.
func TestServePprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		if _, stop, err := servePprof(addr, log); err == nil {
			stop()
			t.Errorf("servePprof(%q) = nil error, want a refusal", addr)
		}
	}
	addr, stop, err := servePprof("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("servePprof(127.0.0.1:0): %v", err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Errorf("GET /debug/pprof/ = %d %.200q, want 200 and the profile index", resp.StatusCode, b)
	}
}
