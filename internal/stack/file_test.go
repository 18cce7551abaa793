package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSAM(t *testing.T) {
	const tmpl = `Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: prod
Globals:
  Function:
    Runtime: python3.12
    MemorySize: 256
    Environment:
      Variables:
        STAGE: !Ref Stage
        SHARED: "1"
Resources:
  Deps:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/deps
  Api:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: api
      CodeUri: src/api
      Handler: app.handler
      Timeout: 10
      Environment:
        Variables:
          OWN: x
      Layers: [!Ref Deps, "arn:aws:lambda:us-east-1:000000000000:layer:other:3"]
      AutoPublishAlias: live
      DeploymentPreference:
        Type: Canary10Percent5Minutes
      FunctionUrlConfig:
        AuthType: NONE
        Cors:
          AllowOrigins: ["*"]
      Events:
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Input: '{"a":1}'
            Name: nightly-rule
        Off:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 day)
            State: DISABLED
        Http:
          Type: HttpApi
  Role:
    Type: AWS::IAM::Role
`
	st, err := Parse([]byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	want := &Stack{
		Layers: map[string]*Layer{"Deps": {Dir: "layers/deps"}},
		Functions: map[string]*Function{"api": {
			Code: "src/api", Runtime: "python3.12", Handler: "app.handler", Memory: 256, Timeout: 10,
			Env:    map[string]string{"STAGE": "prod", "SHARED": "1", "OWN": "x"},
			Layers: []string{"Deps", "arn:aws:lambda:us-east-1:000000000000:layer:other:3"},
			Alias:  "live", Deploy: "Canary10Percent5Minutes",
			URL: &URL{Auth: "NONE", Cors: &Cors{Origins: []string{"*"}}},
			Schedules: map[string]*Schedule{
				"Nightly": {Expression: "cron(0 3 * * ? *)", Input: `{"a":1}`, Rule: true, RuleName: "nightly-rule"},
				"Off":     {Expression: "rate(1 day)", Enabled: &off},
			},
		}},
		Queues: map[string]*Queue{}, Topics: map[string]*Topic{}, Streams: map[string]*Stream{},
		APIs: map[string]*API{"ServerlessHttpApi": {Protocol: "HTTP", Stage: "$default",
			Routes: []Route{{Method: "ANY", Path: "$default", Function: "api", Qualifier: "live", PayloadFormatVersion: "2.0"}}}},
		Warnings: []string{
			"Role: resource type AWS::IAM::Role is skipped: Flint does not check IAM permissions",
		},
		functionIDs: map[string]string{"Api": "api"}, sam: true,
	}
	if diff := cmp.Diff(want, st, cmp.AllowUnexported(Stack{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseFlint(t *testing.T) {
	st, err := Parse([]byte(`stack: shop
layers:
  deps: {dir: layers/deps, runtimes: [nodejs20.x]}
functions:
  orders:
    code: src/orders
    layers: [deps]
    alias: live
    deploy: Linear20PercentEvery2Seconds
    schedules:
      tick: {expression: rate(5 minutes)}
`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "shop" || st.Functions["orders"].Deploy != "Linear20PercentEvery2Seconds" || st.Layers["deps"].Runtimes[0] != "nodejs20.x" {
		t.Errorf("parsed %+v", st)
	}

	bad := []struct{ doc, want string }{
		{"functions:\n  f: {code: x, colour: red}\n", "field colour not found"},
		{"functions:\n  f: {code: x, layers: [nope]}\n", `layer "nope" is neither`},
		{"functions:\n  f: {code: x, layers: [arn:1, arn:2, arn:3, arn:4, arn:5, arn:6]}\n", "at most 5"},
		{"functions:\n  f: {code: x, deploy: Linear10PercentEvery1Minute}\n", "needs an alias"},
		{"functions:\n  f: {code: x, alias: a, deploy: Sometimes}\n", "unknown deployment preference"},
		{"functions:\n  f: {runtime: python3.12}\n", "code is required"},
		{"stack: x\n", "no functions"},
		{"functions:\n  f: {code: x, env: {Q: 1}}\n", `environment variable "Q": Lambda takes a letter`},
		{"functions:\n  f: {code: x, env: {AWS_REGION: eu-west-1}}\n", "environment variable AWS_REGION is reserved"},
	}
	for _, b := range bad {
		if _, err := Parse([]byte(b.doc)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", b.doc, err, b.want)
		}
	}
}

func TestParsePreference(t *testing.T) {
	tests := []struct {
		in       string
		steps    []float64
		interval time.Duration
	}{
		{"AllAtOnce", nil, 0},
		{"CodeDeployDefault.LambdaCanary10Percent5Minutes", []float64{0.1}, 5 * time.Minute},
		{"Canary10Percent30Minutes", []float64{0.1}, 30 * time.Minute},
		{"Linear10PercentEvery1Minute", []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9}, time.Minute},
		{"Linear25PercentEvery2Seconds", []float64{.25, .5, .75}, 2 * time.Second},
	}
	for _, tt := range tests {
		p, err := ParsePreference(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.steps, p.Steps, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" || p.Interval != tt.interval {
			t.Errorf("%s: steps (-want +got) %s, interval %v want %v", tt.in, diff, p.Interval, tt.interval)
		}
	}
}
