package stack

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const eventsTemplate = `Transform: AWS::Serverless-2016-10-31
Resources:
  Dlq:
    Type: AWS::SQS::Queue
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 3
      Tags:
        - {Key: team, Value: core}
  News:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: News
      Subscription:
        - {Protocol: sqs, Endpoint: !GetAtt Dlq.Arn}
  Hook:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref News
      Protocol: https
      Endpoint: https://example.com/hook
      RawMessageDelivery: true
  Clicks:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: 2
      RetentionPeriodHours: 48
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Variables: {color: blue}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageVariables: {color: red}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      Role: arn:aws:iam::000000000000:role/x
      Environment:
        Variables:
          QUEUE_URL: !Ref Jobs
          QUEUE_ARN: !GetAtt Jobs.Arn
          QUEUE_NAME: !GetAtt Jobs.QueueName
          TOPIC: !Ref News
          TOPIC_NAME: !GetAtt News.TopicName
          STREAM: !Ref Clicks
          SELF: !Ref Worker
      Events:
        Q:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 2
            Enabled: false
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 5}
            FilterCriteria:
              Filters:
                - Pattern: '{"body": {"kind": ["a"]}}'
                - Pattern: {body: {kind: [b]}}
        N:
          Type: SNS
          Properties:
            Topic: !Ref News
            FilterPolicy: {kind: [a]}
            FilterPolicyScope: MessageAttributes
        NQ:
          Type: SNS
          Properties:
            Topic: !Ref News
            SqsSubscription: true
        K:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Clicks.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 50
            ParallelizationFactor: 2
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 3
            MaximumRecordAgeInSeconds: 120
            TumblingWindowInSeconds: 0
            DestinationConfig:
              OnFailure: {Type: SQS, Destination: "arn:flint:jetstream:us-east-1:000000000000:stream/failed"}
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
        Tick2:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(5 minutes), State: DISABLED}
        GetItem:
          Type: Api
          Properties: {Path: "/items/{id}", Method: get}
        PutItem:
          Type: Api
          Properties: {Path: /items, Method: put, RestApiId: !Ref Rest, Auth: {Authorizer: NONE}}
        Root:
          Type: HttpApi
        Hello:
          Type: HttpApi
          Properties: {Path: /hello, Method: GET, ApiId: !Ref Http, PayloadFormatVersion: "1.0", TimeoutInMillis: 5000}
`

// TestParseSAMEvents parses every supported resource and event type, with !Ref and !GetAtt
// between them as placeholders that Deploy resolves.
func TestParseSAMEvents(t *testing.T) {
	st, err := Parse([]byte(eventsTemplate))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	on := true
	n := func(v int32) *int32 { return &v }
	arn := placeholder("Worker", "Arn") + ":live"
	want := &Stack{
		Layers: map[string]*Layer{},
		Functions: map[string]*Function{"Worker": {
			Code: "src/", Runtime: "python3.12", Handler: "app.handler", Alias: "live",
			Env: map[string]string{
				"QUEUE_URL": placeholder("Jobs", ""), "QUEUE_ARN": placeholder("Jobs", "Arn"),
				"QUEUE_NAME": placeholder("Jobs", "QueueName"), "TOPIC": placeholder("News", ""),
				"TOPIC_NAME": placeholder("News", "TopicName"), "STREAM": placeholder("Clicks", ""), "SELF": "Worker",
			},
			Schedules: map[string]*Schedule{
				"Tick":  {Expression: "rate(1 minute)", Rule: true},
				"Tick2": {Expression: "rate(5 minutes)", Enabled: &off},
			},
			Mappings: []*Mapping{
				{Event: "K", Source: placeholder("Clicks", "Arn"), StartingPosition: "TRIM_HORIZON", BatchSize: n(50),
					Parallelization: n(2), Bisect: &on, MaxRetries: n(3), MaxRecordAge: n(120),
					OnFailure: "arn:flint:jetstream:us-east-1:000000000000:stream/failed"},
				{Event: "NQ", Source: placeholder("WorkerNQQueue", "Arn")},
				{Event: "Q", Source: placeholder("Jobs", "Arn"), BatchSize: n(100), Window: n(2), Enabled: &off,
					ResponseTypes: []string{"ReportBatchItemFailures"}, MaxConcurrency: n(5),
					Filters: []string{`{"body": {"kind": ["a"]}}`, `{"body":{"kind":["b"]}}`}},
			},
		}},
		Queues: map[string]*Queue{
			"Dlq": {Attributes: map[string]string{}, Tags: map[string]string{}},
			"Jobs": {Name: "jobs", Tags: map[string]string{"team": "core"}, Attributes: map[string]string{"VisibilityTimeout": "60",
				"RedrivePolicy": `{"deadLetterTargetArn":"` + placeholder("Dlq", "Arn") + `","maxReceiveCount":3}`}},
			"WorkerNQQueue": {Attributes: map[string]string{}, Tags: map[string]string{}},
		},
		Topics:  map[string]*Topic{"News": {Attributes: map[string]string{"DisplayName": "News"}, Tags: map[string]string{}}},
		Streams: map[string]*Stream{"Clicks": {Shards: n(2), RetentionHours: n(48), Tags: map[string]string{}}},
		APIs: map[string]*API{
			"Rest": {Protocol: "REST", Stage: "v1", Variables: map[string]string{"color": "blue"},
				Routes: []Route{{Method: "PUT", Path: "/items", Function: "Worker", Qualifier: "live"}}},
			"Http": {Protocol: "HTTP", Stage: "$default", Variables: map[string]string{"color": "red"},
				Routes: []Route{{Method: "GET", Path: "/hello", Function: "Worker", Qualifier: "live", PayloadFormatVersion: "1.0", TimeoutInMillis: 5000}}},
			"ServerlessRestApi": {Protocol: "REST", Stage: "Prod",
				Routes: []Route{{Method: "GET", Path: "/items/{id}", Function: "Worker", Qualifier: "live"}}},
			"ServerlessHttpApi": {Protocol: "HTTP", Stage: "$default",
				Routes: []Route{{Method: "ANY", Path: "$default", Function: "Worker", Qualifier: "live", PayloadFormatVersion: "2.0"}}},
		},
		Subscriptions: []*Subscription{
			{Topic: placeholder("News", ""), Protocol: "https", Endpoint: "https://example.com/hook",
				Attributes: map[string]string{"RawMessageDelivery": "true"}, Owner: "Hook"},
			{Topic: placeholder("News", ""), Protocol: "sqs", Endpoint: placeholder("Dlq", "Arn"), Owner: "News"},
			{Topic: placeholder("News", ""), Protocol: "lambda", Endpoint: arn, Owner: "Worker event N",
				Attributes: map[string]string{"FilterPolicy": `{"kind":["a"]}`, "FilterPolicyScope": "MessageAttributes"}},
			{Topic: placeholder("News", ""), Protocol: "sqs", Endpoint: placeholder("WorkerNQQueue", "Arn"), Owner: "Worker event NQ",
				Attributes: map[string]string{}},
		},
		Warnings: []string{
			"Worker: property Role is ignored: Flint does not check IAM permissions",
		},
		functionIDs: map[string]string{"Worker": "Worker"}, sam: true,
	}
	if diff := cmp.Diff(want, st, cmp.AllowUnexported(Stack{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	order, err := queueOrder(st)
	if err != nil || strings.Join(order, " ") != "Dlq Jobs WorkerNQQueue" {
		t.Errorf("queueOrder = %v, %v; want the dead-letter queue first", order, err)
	}
}

// TestParseSAMUnsupported checks that each thing Flint does not support is one error naming the
// resource and the property, and that Parse returns no stack to deploy.
func TestParseSAMUnsupported(t *testing.T) {
	const head = "Transform: AWS::Serverless-2016-10-31\nResources:\n"
	const fn = "  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.12\n"
	ev := func(typ, props string) string {
		return fn + "      Events:\n        E:\n          Type: " + typ + "\n          Properties: " + props + "\n"
	}
	const q = "  Q:\n    Type: AWS::SQS::Queue\n"
	const s = "  S:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 1}\n"
	const tp = "  T:\n    Type: AWS::SNS::Topic\n"
	tests := []struct{ name, doc, want string }{
		{"resource type", fn + "  Table:\n    Type: AWS::DynamoDB::Table\n", "Table: resource type AWS::DynamoDB::Table is not supported by Flint"},
		{"function property", fn + "      ReservedConcurrentExecutions: 5\n", "Fn: property ReservedConcurrentExecutions is not supported by Flint"},
		{"function s3 code", strings.Replace(fn, "src/", "s3://bucket/code.zip", 1), "Fn: property CodeUri must be a local path"},
		{"event type", ev("S3", "{Bucket: b}"), "Fn: event E: event type S3 is not supported by Flint"},
		{"sqs property", q + ev("SQS", "{Queue: !GetAtt Q.Arn, MaximumRetryAttempts: 2}"), "Fn: event E: property MaximumRetryAttempts is not supported by Flint"},
		{"sqs queue url", q + ev("SQS", "{Queue: !Ref Q}"), "Fn: event E: property Queue: want !GetAtt of an AWS::SQS::Queue's Arn or an arn:aws:sqs:… ARN"},
		{"sqs scaling", q + ev("SQS", "{Queue: !GetAtt Q.Arn, ScalingConfig: {Other: 1}}"), "Fn: event E: property ScalingConfig.Other is not supported by Flint"},
		{"kinesis tumbling", s + ev("Kinesis", "{Stream: !GetAtt S.Arn, StartingPosition: LATEST, TumblingWindowInSeconds: 60}"),
			"Fn: event E: property TumblingWindowInSeconds is not supported by Flint"},
		{"kinesis destination", s + q + ev("Kinesis", "{Stream: !GetAtt S.Arn, StartingPosition: LATEST, DestinationConfig: {OnFailure: {Type: SQS, Destination: !GetAtt Q.Arn}}}"),
			"Fn: event E: property DestinationConfig.OnFailure.Destination: Flint's stream mappings send failed batches only to JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME)"},
		{"kinesis starting position", s + ev("Kinesis", "{Stream: !GetAtt S.Arn}"), "Fn: event E: property StartingPosition: want TRIM_HORIZON or LATEST"},
		{"sqs batch without window", q + ev("SQS", "{Queue: !GetAtt Q.Arn, BatchSize: 100}"),
			"Fn: event E: property MaximumBatchingWindowInSeconds: at least 1 is required with a BatchSize over 10"},
		{"kinesis parallelization", s + ev("Kinesis", "{Stream: !GetAtt S.Arn, StartingPosition: LATEST, ParallelizationFactor: 11}"),
			"Fn: event E: property ParallelizationFactor: 11 is not between 1 and 10"},
		{"response type", q + ev("SQS", "{Queue: !GetAtt Q.Arn, FunctionResponseTypes: [Other]}"),
			"Fn: event E: property FunctionResponseTypes: Other is not ReportBatchItemFailures"},
		{"api method", ev("Api", "{Path: /, Method: fetch}"), "Fn: event E: property Method: FETCH is not an HTTP method API Gateway routes"},
		{"api timeout", ev("Api", "{Path: /, Method: get, TimeoutInMillis: 29001}"), "Fn: event E: property TimeoutInMillis: 29001 is not between 50 and 29000"},
		{"api path", ev("HttpApi", "{Path: items, Method: get}"), `Fn: event E: property Path: "items" does not start with /`},
		{"queue range", fn + "  Q:\n    Type: AWS::SQS::Queue\n    Properties: {VisibilityTimeout: 50000}\n",
			`Q: property VisibilityTimeout: "50000" is not a whole number between 0 and 43200`},
		{"stream on demand shards", fn + "  S:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 1, StreamModeDetails: {StreamMode: ON_DEMAND}}\n",
			"S: property ShardCount: an ON_DEMAND stream has no shard count"},
		{"kinesis consumer", s + ev("Kinesis", "{Stream: !GetAtt S.Arn, StartingPosition: LATEST, ConsumerArn: x}"), "Fn: event E: property ConsumerArn is not supported by Flint"},
		{"sns region", tp + ev("SNS", "{Topic: !Ref T, Region: eu-west-1}"), "Fn: event E: property Region is not supported by Flint (its topics are in its own region)"},
		{"api auth", ev("Api", "{Path: /, Method: get, Auth: {Authorizer: MyCognito}}"), "Fn: event E: property Auth is not supported by Flint (only Authorizer: NONE): its routes are public"},
		{"api request model", ev("Api", "{Path: /, Method: get, RequestModel: {Model: M}}"), "Fn: event E: property RequestModel is not supported by Flint"},
		{"httpapi route settings", ev("HttpApi", "{Path: /, Method: get, RouteSettings: {}}"), "Fn: event E: property RouteSettings is not supported by Flint"},
		{"api resource", fn + "  A:\n    Type: AWS::Serverless::Api\n    Properties: {StageName: p, Cors: '*'}\n", "A: property Cors is not supported by Flint"},
		{"httpapi resource", fn + "  H:\n    Type: AWS::Serverless::HttpApi\n    Properties: {Auth: {}}\n", "H: property Auth is not supported by Flint"},
		{"queue property", fn + "  Q:\n    Type: AWS::SQS::Queue\n    Properties: {Colour: red}\n", "Q: property Colour is not supported by Flint"},
		{"topic archive", fn + "  T:\n    Type: AWS::SNS::Topic\n    Properties: {ArchivePolicy: {MessageRetentionPeriod: 30}}\n", "T: property ArchivePolicy is not supported by Flint"},
		{"subscription protocol", fn + tp + "  Sub:\n    Type: AWS::SNS::Subscription\n    Properties: {TopicArn: !Ref T, Protocol: email, Endpoint: a@b.c}\n",
			"Sub: property Protocol email is not supported by Flint (lambda, sqs, http or https)"},
		{"subscription delivery policy", fn + tp + "  Sub:\n    Type: AWS::SNS::Subscription\n    Properties: {TopicArn: !Ref T, Protocol: https, Endpoint: 'https://x', DeliveryPolicy: {}}\n",
			"Sub: property DeliveryPolicy is not supported by Flint"},
		{"stream property", fn + "  S:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 1, Colour: red}\n", "S: property Colour is not supported by Flint"},
		{"sub intrinsic", strings.Replace(fn, "      Runtime: python3.12\n", "      Runtime: !Sub python${V}\n", 1),
			"Fn: property Runtime: intrinsic function Fn::Sub is not supported (only !Ref and !GetAtt)"},
		{"getatt attribute", q + fn + "      Environment: {Variables: {A: !GetAtt Q.Url}}\n", "Fn: property Environment.Variables.A: !GetAtt Q.Url: a AWS::SQS::Queue has the attributes Arn, QueueName, QueueUrl"},
		{"ref unknown", fn + "      Environment: {Variables: {A: !Ref Nope}}\n", "Fn: property Environment.Variables.A: !Ref Nope: no such parameter or resource"},
		{"function arn in env", fn + "      Environment: {Variables: {A: !GetAtt Fn.Arn}}\n", "Fn: property Environment.Variables.A: a function's Arn is not known before it is created"},
		{"condition", fn + "  Q:\n    Type: AWS::SQS::Queue\n    Condition: IsProd\n", "Q: resource attribute Condition is not supported"},
		{"globals api", "Globals:\n  Api: {Cors: '*'}\n" + head + fn, "Globals: section Api is not supported"},
		{"rest api events without stage", fn + "  A:\n    Type: AWS::Serverless::Api\n", "A: property StageName is required"},
		{"restapiid of http api", "  H:\n    Type: AWS::Serverless::HttpApi\n" + ev("Api", "{Path: /, Method: get, RestApiId: !Ref H}"),
			"Fn: event E: property RestApiId: want !Ref of an AWS::Serverless::Api of the template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if !strings.HasPrefix(doc, "Globals") {
				doc = head + doc
			}
			st, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", st)
			}
			if st != nil {
				t.Errorf("Parse returned a stack with its error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

// TestParseSAMIgnored checks what is skipped with a warning rather than refused: IAM and
// permissions, which mean nothing on Flint.
func TestParseSAMIgnored(t *testing.T) {
	st, err := Parse([]byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Runtime: python3.12
      Handler: app.handler
      Policies: [AWSLambdaBasicExecutionRole]
  Perm:
    Type: AWS::Lambda::Permission
    Properties: {FunctionName: !Ref Fn, Action: lambda:InvokeFunction, Principal: sns.amazonaws.com}
  Q:
    Type: AWS::SQS::Queue
    Properties: {KmsMasterKeyId: alias/aws/sqs}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Fn: property Policies is ignored: Flint does not check IAM permissions",
		"Perm: resource type AWS::Lambda::Permission is skipped: event sources and APIs on Flint need no invoke permission",
		"Q: property KmsMasterKeyId is ignored: Flint encrypts its data with its own keys",
	}
	if diff := cmp.Diff(want, st.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestParseSAMSeveralErrors checks that a template with several problems gets them all in one
// error, one line each.
func TestParseSAMSeveralErrors(t *testing.T) {
	_, err := Parse([]byte(`Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: a.b, Runtime: python3.12, SnapStart: {ApplyOn: PublishedVersions}}
  Bucket:
    Type: AWS::S3::Bucket
`))
	want := "Bucket: resource type AWS::S3::Bucket is not supported by Flint\nFn: property SnapStart is not supported by Flint"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestRefsResolve(t *testing.T) {
	r := refs{}
	r.set("Q", "http://h/000000000000/q", map[string]string{"Arn": "arn:aws:sqs:us-east-1:000000000000:q"})
	got, err := r.resolve("url=" + placeholder("Q", "") + " arn=" + placeholder("Q", "Arn"))
	if err != nil || got != "url=http://h/000000000000/q arn=arn:aws:sqs:us-east-1:000000000000:q" {
		t.Errorf("resolve = %q, %v", got, err)
	}
	if _, err := r.resolve(placeholder("T", "TopicName")); err == nil || !strings.Contains(err.Error(), "!GetAtt T.TopicName") {
		t.Errorf("resolve of an unknown reference = %v, want an error naming it", err)
	}
}

// TestSAMDocExample parses the SAM example of docs/SAM.md, so that the page stays true.
func TestSAMDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/SAM.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\nTransform: AWS::Serverless-2016-10-31\n")
	if start < 0 {
		t.Fatal("docs/SAM.md has no SAM example")
	}
	doc = doc[start+len("```yaml\n"):]
	doc = doc[:strings.Index(doc, "```")]
	st, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the example of docs/SAM.md: %v", err)
	}
	f := st.Functions["Orders"]
	if len(f.Mappings) != 2 || len(st.Subscriptions) != 1 || len(st.Queues) != 2 || len(st.APIs) != 1 || len(st.Warnings) != 0 {
		t.Errorf("the example parsed to %d mappings, %d subscriptions, %d queues, %d APIs, warnings %v",
			len(f.Mappings), len(st.Subscriptions), len(st.Queues), len(st.APIs), st.Warnings)
	}
}
