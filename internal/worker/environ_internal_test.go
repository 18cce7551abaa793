package worker

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEnvironUserWins pins that Lambda's values for the keys a user may set as well (PATH, LANG,
// TZ, the runtime's PYTHONPATH) are defaults: a user's value replaces them, and each key is
// passed once (glibc's getenv reads the first of two, Python's os.environ the last: with both,
// a Python function ignored its TZ).
func TestEnvironUserWins(t *testing.T) {
	user := map[string]string{"TZ": "Asia/Tokyo", "PATH": "/opt/mine/bin:/usr/bin", "PYTHONPATH": "/var/task/lib", "GREETING": "hi"}
	p := &Pool{m: &Manager{now: time.Now, cfg: Config{Region: "eu-west-1"}}, fn: Function{Name: "f", Version: "$LATEST",
		Handler: "app.handler", MemoryMB: 128, Env: func() (map[string]string, error) { return user, nil }}}
	env, err := p.environ([]string{"PYTHONPATH=/var/runtime", "PYTHONUNBUFFERED=1"}, false, "token", "2026/12/07/[$LATEST]0123")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		seen[k] = append(seen[k], v)
	}
	for k, want := range map[string]string{"TZ": "Asia/Tokyo", "PATH": "/opt/mine/bin:/usr/bin", "PYTHONPATH": "/var/task/lib",
		"GREETING": "hi", "LANG": "en_US.UTF-8", "PYTHONUNBUFFERED": "1", "AWS_REGION": "eu-west-1", "AWS_SESSION_TOKEN": "token"} {
		if got := seen[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want once %q", k, got, want)
		}
	}
}

// TestLogStreamName pins Lambda's stream names: YYYY/MM/DD/[VERSION]<32 hex> in the function's
// own group, YYYY/MM/DD/NAME[VERSION][<32 hex>] in a custom one.
func TestLogStreamName(t *testing.T) {
	at := time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC)
	p := &Pool{m: &Manager{now: func() time.Time { return at }}, fn: Function{Name: "f", Version: "3"}}
	if got := p.logStreamName(); !regexp.MustCompile(`^2026/12/07/\[3\][0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("default group: %q", got)
	}
	p.fn.Logging.Group = "/aws/lambda/f"
	if got := p.logStreamName(); !regexp.MustCompile(`^2026/12/07/\[3\][0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("the default group named: %q", got)
	}
	p.fn.Logging.Group = "/apps/shop"
	if got := p.logStreamName(); !regexp.MustCompile(`^2026/12/07/f\[3\]\[[0-9a-f]{32}\]$`).MatchString(got) {
		t.Errorf("custom group: %q", got)
	}
}
