// Package stack deploys several functions, their layers, aliases, function URLs and schedules
// from one file, idempotently, and rolls aliases out gradually with automatic rollback.
//
// It owns the stack file formats (Flint's own and the AWS SAM subset), the comparison of desired
// and deployed state, and the rollout of an alias from one version to the next. It is a client of
// Flint's public APIs only (Lambda, EventBridge Scheduler, /metrics) through aws-sdk-go-v2: it must
// not reach into server internals, and it never reads flags or the environment (that is cli's).
//
// # File formats
//
// Flint's own stack format and the supported subset of AWS SAM templates (Globals.Function,
// AWS::Serverless::Function with Schedule/ScheduleV2 events, FunctionUrlConfig, AutoPublishAlias
// and DeploymentPreference, AWS::Serverless::LayerVersion; other types are warned about and
// skipped) are documented for users in docs/SAM.md at the repository's root. Keep that page true
// when the parser (file.go) changes.
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
// before any state changes), then, for each layer and function, reads the deployed state and calls
// only the APIs needed to reach the desired one: a second deploy of an unchanged stack calls no
// mutating API and reports "no changes". Functions a stack created carry the tag flint:stack; one
// no longer in the file is deleted only with Options.Prune.
//
// A function with an alias gets a new version when its code or configuration differ from the
// alias's version. A gradual deployment preference then shifts the alias's
// AdditionalVersionWeights to the new version step by step, watching the new version's errors in
// flint_invocations_total (outcome error or timeout) on /metrics; when its error rate over a step
// exceeds Options.MaxErrorRate the alias goes back to the old version wholly and Deploy returns a
// *RollbackError.
package stack
