package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const samQueueTemplate = `Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: cli-jobs
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: cli-sam-fn
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.12
      Role: arn:aws:iam::000000000000:role/x
      Environment:
        Variables:
          JOBS: !Ref Jobs
      Events:
        Q:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn}
__EXTRA__`

// TestDeploySAMEvents runs flint deploy -f on a SAM template with a queue and an SQS event: the
// CLI builds a Deployer with the SQS client (the queue is created, the mapping too), a second
// deploy reports no changes, an ignored IAM property is a warning, and a template with an
// unsupported resource and property fails with one error naming both and creates nothing.
func TestDeploySAMEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startServer(t, ctx, nil)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "fn"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fn", "app.py"), []byte("def handler(e, c):\n    return {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	template := filepath.Join(dir, "template.yaml")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(template, []byte(strings.Replace(samQueueTemplate, "__EXTRA__", extra, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Refused first, so that "creates nothing" is checked on an empty server.
	write("  Table:\n    Type: AWS::DynamoDB::Table\n  Other:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: cli-other, Colour: red}\n")
	code, stdout, stderr := runCLI(t, ctx, "deploy", "-f", template)
	if code == 0 || !strings.Contains(stderr, "Table: resource type AWS::DynamoDB::Table is not supported by Flint") ||
		!strings.Contains(stderr, "Other: property Colour is not supported by Flint") {
		t.Fatalf("deploy of an unsupported template: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, out, _ := runCLI(t, ctx, "queues"); strings.Contains(out, "cli-") {
		t.Errorf("the refused deploy created queues:\n%s", out)
	}
	if _, out, _ := runCLI(t, ctx, "list"); strings.Contains(out, "cli-sam-fn") {
		t.Errorf("the refused deploy created the function:\n%s", out)
	}

	write("")
	code, stdout, stderr = runCLI(t, ctx, "deploy", "-f", template)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"queue    cli-jobs: created", "function cli-sam-fn: created", "mapping  cli-sam-fn arn:aws:sqs:us-east-1:000000000000:cli-jobs: created",
		"warning: Fn: property Role is ignored: Flint does not check IAM permissions"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, stdout)
		}
	}
	if _, out, _ := runCLI(t, ctx, "queues"); !strings.Contains(out, "cli-jobs") || !strings.Contains(out, "cli-sam-fn") {
		t.Errorf("flint queues after the deploy:\n%s", out)
	}
	code, stdout, stderr = runCLI(t, ctx, "deploy", "-f", template)
	if code != 0 || !strings.Contains(stdout, "no changes") {
		t.Errorf("second deploy: exit %d\n%s%s", code, stdout, stderr)
	}
}
