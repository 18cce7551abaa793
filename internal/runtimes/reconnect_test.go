package runtimes

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestReconnect checks that both clients survive a Runtime API that closes connections:
// explicitly (Connection: close on every response) or silently (an idle timeout shorter than
// the handler's run, so the kept-alive connection is gone when the response is posted).
func TestReconnect(t *testing.T) {
	t.Parallel()
	servers := []struct {
		name      string
		configure func(*http.Server)
	}{
		{"connection close", func(s *http.Server) { s.SetKeepAlivesEnabled(false) }},
		{"idle timeout", func(s *http.Server) { s.IdleTimeout = time.Millisecond }},
	}
	functions := []fnConfig{
		{runtime: pyRuntime, handler: "app.handler", files: map[string]string{
			"app.py": "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n"}},
		{runtime: nodeRuntime, handler: "index.handler", files: map[string]string{
			"index.js": "exports.handler = async (event) => { await new Promise((r) => setTimeout(r, 50)); return event; };\n"}},
	}
	for _, srv := range servers {
		for _, fn := range functions {
			t.Run(srv.name+"/"+fn.runtime, func(t *testing.T) {
				api := startPeer(t, srv.configure)
				start(t, api, fn)
				for i := range 3 {
					got := api.invoke(t, event{Body: strconv.Itoa(i)})
					wantResponse(t, got, strconv.Itoa(i))
				}
			})
		}
	}
}
