package runtimes

import (
	"strconv"
	"testing"
)

// BenchmarkInvoke measures one warm invocation round trip through each client: /next, the
// handler, and the response post, against the in-test Runtime API peer.
func BenchmarkInvoke(b *testing.B) {
	clients := []struct {
		runtime, handler string
		files            map[string]string
	}{
		{pyRuntime, "app.handler", map[string]string{"app.py": "def handler(event, context):\n    return event\n"}},
		{nodeRuntime, "index.handler", map[string]string{"index.js": "exports.handler = async (event) => event;\n"}},
	}
	for _, c := range clients {
		b.Run(c.runtime, func(b *testing.B) {
			api := startPeer(b)
			start(b, api, fnConfig{runtime: c.runtime, handler: c.handler, files: c.files})
			wantBody := `{"k": "v"}`
			if c.runtime == nodeRuntime {
				wantBody = `{"k":"v"}`
			}
			i := 0
			for b.Loop() {
				i++
				got := api.invoke(b, event{ID: "bench-" + strconv.Itoa(i), Body: `{"k":"v"}`})
				if got.Kind != "response" || got.Body != wantBody {
					b.Fatalf("post %s %q, want response %q", got.Kind, got.Body, wantBody)
				}
			}
		})
	}
}
