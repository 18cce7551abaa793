package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
)

const samTemplate = `AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Timeout: 5
    Environment:
      Variables:
        STAGE: test
Resources:
  DepsLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: deps
      ContentUri: layer/
      CompatibleRuntimes: [python3.12]
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: hello
      CodeUri: hello/
      Handler: app.handler
      MemorySize: 256
      Layers:
        - !Ref DepsLayer
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Linear10PercentEvery1Minute
      FunctionUrlConfig:
        AuthType: NONE
__TICKER__`

const tickerResource = `  Ticker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: ticker
      CodeUri: ticker/
      Handler: app.handler
      Environment:
        Variables:
          KIND: tick
      Events:
        Every:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
            Input: '{"tick": true}'
`

// TestDeploySAMStack deploys a SAM template with two Python functions (one using a layer from
// /opt/python), a schedule and a URL against a real Flint; redeploys it unchanged; rolls a broken
// version back under a linear deployment; and prunes a removed function.
func TestDeploySAMStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, _ := startServer(t, ctx, nil)

	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	template := filepath.Join(dir, "template.yaml")
	write("template.yaml", strings.Replace(samTemplate, "__TICKER__", tickerResource, 1))
	write("layer/python/greeting.py", "GREETING = 'hello from a layer'\n")
	write("hello/app.py", "import os, greeting\ndef handler(event, context):\n    return {'msg': greeting.GREETING, 'stage': os.environ['STAGE']}\n")
	write("ticker/app.py", "def handler(event, context):\n    return event\n")

	a := &app{endpoint: s.URL()}
	lc, err := a.lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lo := lc.Options()
	sc := scheduler.New(scheduler.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
		BaseEndpoint: aws.String(s.URL())})

	deploy := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, ctx, append([]string{"deploy", "-f", template, "--deploy-step", "2s"}, args...)...)
		t.Logf("flint deploy -f %v: exit %d\n%s%s", args, code, out, errOut)
		if code != wantCode {
			t.Fatalf("flint deploy -f: exit %d, want %d; stderr %q", code, wantCode, errOut)
		}
		return out + errOut
	}

	// 1. First deployment: everything is created and works.
	out := deploy(0)
	for _, want := range []string{"layer    deps: published", "function hello: created", "alias    hello live: created",
		"url      hello live: created", "schedule ticker ticker-Every: created", "function ticker: created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first deploy output lacks %q", want)
		}
	}
	_, got, _ := runCLI(t, ctx, "invoke", "hello:live")
	if !strings.Contains(got, `"msg": "hello from a layer"`) || !strings.Contains(got, `"stage": "test"`) {
		t.Errorf("invoke hello:live printed %q", got)
	}
	if _, err := lc.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("live")}); err != nil {
		t.Errorf("hello:live has no URL: %v", err)
	}
	sched, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("ticker-Every")})
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	if aws.ToString(sched.ScheduleExpression) != "rate(1 hour)" || aws.ToString(sched.Target.Input) != `{"tick": true}` {
		t.Errorf("schedule %s input %s", aws.ToString(sched.ScheduleExpression), aws.ToString(sched.Target.Input))
	}

	// 2. Unchanged: no changes, and no revision moves.
	revisions := func() map[string]string {
		t.Helper()
		r := map[string]string{}
		for _, fn := range []string{"hello", "ticker"} {
			got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
			if err != nil {
				t.Fatal(err)
			}
			r[fn] = aws.ToString(got.Configuration.RevisionId)
		}
		al, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("hello"), Name: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		r["hello:live"] = aws.ToString(al.RevisionId) + " → " + aws.ToString(al.FunctionVersion)
		return r
	}
	before := revisions()
	if out := deploy(0); !strings.Contains(out, "no changes") {
		t.Errorf("second deploy did not say no changes:\n%s", out)
	}
	if after := revisions(); !mapsEqual(before, after) {
		t.Errorf("an unchanged deploy moved revisions: before %v, after %v", before, after)
	}
	oldVersion := strings.Split(before["hello:live"], " → ")[1]

	// 3. A broken version under Linear10PercentEvery1Minute, with traffic on the alias: rolled back.
	write("hello/app.py", "def handler(event, context):\n    raise RuntimeError('broken')\n")
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for trafficCtx.Err() == nil {
			_, _ = lc.Invoke(trafficCtx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Qualifier: aws.String("live")})
			time.Sleep(5 * time.Millisecond)
		}
	}()
	out = deploy(1, "--output", "json")
	stopTraffic()
	wg.Wait()
	if !strings.Contains(out, "rolled back to version "+oldVersion) {
		t.Errorf("rollback output:\n%s", out)
	}
	var report struct {
		RolledBack bool `json:"rolled_back"`
	}
	if i := strings.Index(out, "{"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&report) != nil || !report.RolledBack {
		t.Errorf("--output json did not report rolled_back: %s", out)
	}
	al, err := lc.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("hello"), Name: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(al.FunctionVersion); v != oldVersion || (al.RoutingConfig != nil && len(al.RoutingConfig.AdditionalVersionWeights) > 0) {
		t.Errorf("after rollback alias live is on %s with routing %+v, want %s alone", v, al.RoutingConfig, oldVersion)
	}
	if _, got, _ := runCLI(t, ctx, "invoke", "hello:live"); !strings.Contains(got, "hello from a layer") {
		t.Errorf("after rollback invoke hello:live printed %q", got)
	}

	// 4. A function removed from the file stays without --prune and goes with it.
	write("hello/app.py", "import os, greeting\ndef handler(event, context):\n    return {'msg': greeting.GREETING, 'stage': os.environ['STAGE']}\n")
	write("template.yaml", strings.Replace(samTemplate, "__TICKER__", "", 1))
	if out := deploy(0); !strings.Contains(out, "ticker is no longer in the stack") {
		t.Errorf("deploy without --prune:\n%s", out)
	}
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ticker")}); err != nil {
		t.Errorf("ticker deleted without --prune: %v", err)
	}
	if out := deploy(0, "--prune"); !strings.Contains(out, "function ticker: deleted") {
		t.Errorf("deploy --prune:\n%s", out)
	}
	var nf *types.ResourceNotFoundException
	if _, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ticker")}); !errors.As(err, &nf) {
		t.Errorf("ticker after --prune: %v", err)
	}
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("ticker-Every")}); err == nil {
		t.Error("ticker's schedule survived --prune")
	}
	if out := deploy(0); !strings.Contains(out, "no changes") {
		t.Errorf("deploy after prune:\n%s", out)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
