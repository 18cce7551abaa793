package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/config"
)

const scheduleEventsTemplate = `Transform: AWS::Serverless-2016-10-31
Resources:
  Rec:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: rec
      CodeUri: rec/
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          OUT: __OUT__
      Events:
        Rule:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
            Name: my-rule
        RuleInput:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
            Input: '{"mine": 1}'
        V2:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 minute)
            Input: '{"v2": true, "at": "<aws.scheduler.scheduled-time>"}'
`

// TestSAMScheduleEvents deploys SAM schedule events against a real Flint and waits for their
// first rate(1 minute) occurrence: a Schedule event without Input delivers EventBridge's
// "Scheduled Event" document (with the same id on the retry of a failed first attempt), one with
// Input that Input verbatim, and a ScheduleV2 event its Input with Scheduler's context
// attributes filled in.
func TestSAMScheduleEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	startServer(t, ctx, func(c *config.Config) { c.AsyncRetryDelay = time.Second })

	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "events")
	for name, body := range map[string]string{
		"template.yaml": strings.Replace(scheduleEventsTemplate, "__OUT__", out, 1),
		// The first delivery of the rule's document fails once, so that it is retried.
		"rec/app.py": "import json, os\ndef handler(e, c):\n    out = os.environ['OUT']\n    open(out, 'a').write(json.dumps(e, separators=(',', ':')) + '\\n')\n" +
			"    if e.get('source') == 'aws.events' and not os.path.exists(out + '.failed'):\n" +
			"        open(out + '.failed', 'w').close()\n        raise Exception('first attempt fails')\n    return 'ok'\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	template := filepath.Join(dir, "template.yaml")
	deployed := time.Now().UTC().Truncate(time.Second)
	if code, stdout, stderr := runCLI(t, ctx, "deploy", "-f", template); code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, ctx, "deploy", "-f", template); code != 0 || !strings.Contains(stdout+stderr, "no changes") {
		t.Errorf("second deploy: exit %d, want no changes\n%s%s", code, stdout, stderr)
	}

	var lines []string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && len(lines) < 4; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		lines = strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
	}
	if len(lines) != 4 {
		t.Fatalf("got %d deliveries, want 4 (the rule's twice, the others once): %v", len(lines), lines)
	}
	t.Logf("deliveries:\n%s", strings.Join(lines, "\n"))
	var docs []map[string]any
	var others []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("delivery %s: %v", l, err)
		}
		if m["source"] == "aws.events" {
			docs = append(docs, m)
		} else {
			others = append(others, l)
		}
	}
	if len(docs) != 2 {
		t.Fatalf("rule documents delivered: %d, want 2 (a failed attempt and its retry): %v", len(docs), lines)
	}
	doc := docs[0]
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"account", "detail", "detail-type", "id", "region", "resources", "source", "time", "version"}; !slices.Equal(keys, want) {
		t.Errorf("document keys = %v, want %v", keys, want)
	}
	for k, want := range map[string]any{"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
		"account": "000000000000", "region": "us-east-1"} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	if res, _ := doc["resources"].([]any); len(res) != 1 || res[0] != "arn:aws:events:us-east-1:000000000000:rule/my-rule" {
		t.Errorf("resources = %v", doc["resources"])
	}
	if d, ok := doc["detail"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("detail = %v, want {}", doc["detail"])
	}
	if id, _ := doc["id"].(string); uuid.Validate(id) != nil {
		t.Errorf("id = %v, want a UUID", doc["id"])
	}
	// The occurrence, as EventBridge writes times: whole seconds, UTC, Z.
	occurrence := func(tm string) bool {
		at, err := time.Parse(time.RFC3339, tm)
		return regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(tm) && err == nil &&
			!at.Before(deployed) && !at.After(time.Now())
	}
	if tm, _ := doc["time"].(string); !occurrence(tm) {
		t.Errorf("time = %q, want the occurrence as 2006-01-02T15:04:05Z", tm)
	}
	if docs[1]["id"] != doc["id"] || docs[1]["time"] != doc["time"] {
		t.Errorf("the retry carries id %v time %v, the first attempt id %v time %v", docs[1]["id"], docs[1]["time"], doc["id"], doc["time"])
	}
	slices.Sort(others)
	var v2 struct {
		V2 bool   `json:"v2"`
		At string `json:"at"`
	}
	if len(others) != 2 || others[0] != `{"mine":1}` || json.Unmarshal([]byte(others[1]), &v2) != nil || !v2.V2 || !occurrence(v2.At) {
		t.Errorf(`inputs delivered = %v, want {"mine":1} and {"v2":true,"at":<the occurrence>}`, others)
	}
}
