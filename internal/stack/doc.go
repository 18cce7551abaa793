// Package stack deploys several functions, their layers, aliases, function URLs and schedules
// from one file, idempotently, and rolls aliases out gradually with automatic rollback.
//
// It owns the stack file formats (Flint's own and the AWS SAM subset), the comparison of desired
// and deployed state, and the rollout of an alias from one version to the next. It is a client of
// Flint's public APIs only (Lambda, EventBridge Scheduler, /metrics) through aws-sdk-go-v2: it must
// not reach into server internals, and it never reads flags or the environment (that is cli's).
//
// # Flint stack files
//
//	stack: shop                   # stack name: tags its functions for --prune (default: the
//	                              # file's directory name)
//	layers:
//	  deps:                       # a layer, published as "deps" when its content changes
//	    dir: layers/deps          # a directory zipped as is (python/…, nodejs/node_modules/…,
//	                              # bin/…) or a .zip
//	    runtimes: [python3.12]    # CompatibleRuntimes (optional)
//	functions:
//	  orders:                     # the function's name
//	    code: src/orders          # sources (built by package build), a ready directory (one with
//	                              # a bootstrap) or a .zip; relative to the stack file
//	    runtime: python3.12       # default: the runtime the build implies
//	    handler: app.handler      # default: the handler the build finds
//	    memory: 256               # MB (default 128)
//	    timeout: 10               # seconds (default 3)
//	    description: Orders API
//	    env: {TABLE: orders}
//	    layers: [deps]            # this stack's layers by name, or layer version ARNs
//	    alias: live               # publish a version on each change and move this alias
//	    deploy: Linear10PercentEvery1Minute   # how the alias moves: AllAtOnce (default),
//	                              # CanaryNPercentMMinutes, LinearNPercentEveryMMinutes (also
//	                              # …Seconds for short tests)
//	    url:                      # a function URL (on the alias when there is one)
//	      auth: NONE              # NONE or AWS_IAM
//	      cors: {origins: ["*"], methods: [GET, POST], headers: [content-type], max_age: 60}
//	    schedules:
//	      nightly:                # schedule named <function>-<name>
//	        expression: cron(0 3 * * ? *)    # or rate(5 minutes), at(…)
//	        input: '{"full": true}'
//	        enabled: true         # default true
//
// # AWS SAM templates
//
// A file with "Transform: AWS::Serverless-2016-10-31" or a Resources section is read as a SAM
// template. Supported: Globals.Function (merged into every function, Environment.Variables key by
// key); AWS::Serverless::Function with FunctionName (default: the logical ID), CodeUri, Handler,
// Runtime, MemorySize, Timeout, Description, Environment.Variables, Layers (!Ref to an
// AWS::Serverless::LayerVersion of the template, or ARNs), Events of Type Schedule (Schedule,
// Input, Enabled, Name) and ScheduleV2 (ScheduleExpression, Input, State), FunctionUrlConfig
// (AuthType, Cors), AutoPublishAlias and DeploymentPreference.Type; AWS::Serverless::LayerVersion with
// LayerName (default: the logical ID), ContentUri and CompatibleRuntimes. !Ref to a template
// Parameter resolves to its Default. Other event types and resource types are reported as
// warnings and skipped.
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
