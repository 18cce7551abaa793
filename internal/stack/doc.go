// Package stack deploys several functions, their layers, aliases, function URLs and schedules
// from one file, idempotently, and rolls aliases out gradually with automatic rollback; from a
// SAM template also SQS queues, SNS topics and subscriptions, Kinesis streams, and the functions'
// SQS, SNS, Kinesis, Api and HttpApi events.
//
// It owns the stack file formats (Flint's own and the AWS SAM subset), the comparison of desired
// and deployed state, and the rollout of an alias from one version to the next. It is a client of
// Flint's public APIs only (Lambda, EventBridge Scheduler, SQS, SNS, Kinesis through aws-sdk-go-v2;
// Flint's management API /flint/v1/apis, signed with SigV4 like the SDK's calls; /metrics): it
// must not reach into server internals, and it never reads flags or the environment (that is
// cli's).
//
// # File formats
//
// Flint's own stack format (file.go) and the supported subset of AWS SAM templates (sam.go, sam_events.go, sam_resources.go) are
// documented for users in docs/SAM.md at the repository's root; a test parses that page's
// example. Keep the page true when the parsers change.
//
// The SAM parser reads every property it knows and refuses the rest: an unsupported resource
// type, property, event type or intrinsic function is an error naming the resource and the
// property, all of them in one error, before anything is built or deployed. Only what means
// nothing on Flint (IAM roles and policies, permissions, encryption keys, tracing) is skipped
// with a warning. !Ref of a parameter (its Default) and of a function (its name) resolve while
// parsing; !Ref and !GetAtt of the resources Deploy creates (a queue's URL, Arn, QueueName,
// QueueUrl; a topic's ARN, TopicArn, TopicName; a stream's name and Arn; a function's Arn) are
// written as placeholders inside the strings that use them (ref.go), also inside JSON documents
// such as a redrive policy, and replaced as Deploy learns their values.
//
// Both kinds of schedule event become EventBridge Scheduler schedules named <function>-<event>,
// delivering what AWS delivers. A ScheduleV2 event (Scheduler on AWS too) delivers its Input,
// context attributes such as <aws.scheduler.scheduled-time> filled in, or {} without one. A
// Schedule event (an EventBridge rule on AWS) delivers its Input verbatim or, without one,
// EventBridge's "Scheduled Event" document: {"version":"0","id":…,"detail-type":"Scheduled
// Event","source":"aws.events","account":…,"time":"…Z","region":…,"resources":["arn:aws:events:
// REGION:ACCOUNT:rule/NAME"],"detail":{}}, NAME being the event's Name or the schedule's name. The
// schedule's Input is that document with Scheduler's context attributes for id and time, so the
// id stays the same across the retries of one occurrence.
//
// # Deploying
//
// Deploy builds every package first (so a build error or a package over Lambda's limits fails
// before any state changes) and runs the read-only checks (a deployed stream the template would
// reshard: Flint does not reshard), then creates or updates the queues (dead-letter queues
// first), topics and streams, the layers, each function with its alias, URL, schedules and event
// source mappings, then the SNS subscriptions and the APIs. For each it reads the deployed state
// and calls only the APIs needed to reach the desired one: a second deploy of an unchanged stack
// calls no mutating API and reports "no changes". Functions, queues, topics, streams and APIs a
// stack created carry the tag flint:stack; one no longer in the file is deleted only with
// Options.Prune. A queue, topic or stream that exists without the tag is adopted untagged (never
// pruned); one tagged by another stack is refused by the read-only checks.
//
// A SAM template owns its functions' events. A mapping is found by function (any qualifier) and
// source ARN and updated in place, every setting sent so that one removed from the template goes
// back to Lambda's default; the function's other mappings over SQS queues and Kinesis streams are
// deleted (arn:flint:jetstream ones, made by hand, are left alone). A subscription is found by
// topic, protocol and endpoint; lambda and sqs subscriptions to the stack's functions and queues
// that the template no longer has are unsubscribed. An API (one per AWS::Serverless::Api or
// HttpApi, and the implicit ServerlessRestApi, stage Prod, and ServerlessHttpApi, stage $default)
// is named <stack>-<logical ID>, read with GET /flint/v1/apis/{name} and put whole only when it
// differs. A function with an alias is wired on its alias, as SAM does.
//
// A function with an alias gets a new version when its code or configuration differ from the
// alias's version. A gradual deployment preference then shifts the alias's
// AdditionalVersionWeights to the new version step by step, watching the new version's errors in
// flint_invocations_total (outcome error or timeout) on /metrics; when its error rate over a step
// exceeds Options.MaxErrorRate the alias goes back to the old version wholly and Deploy returns a
// *RollbackError.
package stack
