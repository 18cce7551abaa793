// Deploy and what it returns: every package built and every deployed stream checked first, then
// the queues, topics and streams (queue.go, topic.go, stream.go), each layer and function brought
// to the stack's state (layer.go, function.go, alias.go, url.go, schedule.go, mapping.go), the
// SNS subscriptions and the APIs (api.go), then what the stack no longer has pruned.

package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flint-run/flint/internal/build"
)

const (
	// StackTag is the tag that marks a function as created by a stack (its value is the name).
	StackTag = "flint:stack"
	// defaultRole is the execution role of the functions and schedules a stack creates.
	defaultRole = "arn:aws:iam::000000000000:role/flint"
	// waitTimeout bounds the wait for a function to become Active or finish an update.
	waitTimeout = 5 * time.Minute
)

// Deployer deploys stacks through Flint's public APIs.
type Deployer struct {
	Lambda    *lambda.Client
	Scheduler *scheduler.Client
	SQS       *sqs.Client
	SNS       *sns.Client
	Kinesis   *kinesis.Client
	// Endpoint is Flint's base URL, for its management API (/flint/v1/apis), which Deploy
	// calls signed with the Lambda client's credentials.
	Endpoint string
	// MetricsURL is Flint's /metrics, read during gradual rollouts.
	MetricsURL string
	// HTTP fetches MetricsURL and calls the management API; it must have a timeout.
	HTTP *http.Client
	// Out receives progress, one line per action.
	Out io.Writer
}

// Options tune a deployment.
type Options struct {
	// Prune deletes functions tagged with the stack's name that the file no longer has.
	Prune bool
	// StepInterval, when positive, replaces every gradual deployment's step interval.
	StepInterval time.Duration
	// MaxErrorRate is the new version's highest tolerated error rate over a step (0: any error
	// rolls back).
	MaxErrorRate float64
	// Build tunes source builds.
	Build build.Options
}

// Change is one thing a deployment changed.
type Change struct {
	Kind     string `json:"kind"`     // function, layer, alias, url, schedule, queue, topic, stream, mapping, subscription, api
	Name     string `json:"name"`     // the function's or layer's name
	Action   string `json:"action"`   // created, updated, deleted, published, shifted, rolled back …
	Detail   string `json:"detail"`   // e.g. "code, configuration" or "v2 → v3"
	Resource string `json:"resource"` // e.g. the alias, schedule or URL affected
}

// Result is what Deploy did.
type Result struct {
	Stack   string   `json:"stack"`
	Changes []Change `json:"changes"`
	// Unpruned lists what the stack created and the file no longer has, kept because Prune
	// was not set: functions by name, other resources as "KIND NAME" (queue, topic, stream,
	// api).
	Unpruned []string `json:"unpruned,omitempty"`
}

// RollbackError means a gradual deployment's new version failed and its alias was moved back.
type RollbackError struct {
	Function, Alias string
	Old, New        string
	Errors, Total   float64
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("function %s: version %s failed %v of %v invocations during the rollout; alias %s rolled back to version %s",
		e.Function, e.New, e.Errors, e.Total, e.Alias, e.Old)
}

// artifact is a built package.
type artifact struct {
	zip    []byte
	sha    string
	size   int64
	result *build.Result // nil for a ready package
}

// Deploy brings Flint to the state st describes. It returns what changed, also when it fails
// part way (a *RollbackError included).
func (d *Deployer) Deploy(ctx context.Context, st *Stack, opts Options) (*Result, error) {
	res := &Result{Stack: st.Name}
	for _, w := range st.Warnings {
		fmt.Fprintf(d.Out, "warning: %s\n", w)
	}
	// Build everything first: a failure or an over-limit package changes nothing.
	layers := map[string]artifact{}
	for _, name := range sortedKeys(st.Layers) {
		a, err := d.pack(ctx, st, st.Layers[name].Dir, false, opts.Build)
		if err != nil {
			return res, fmt.Errorf("layer %s: %w", name, err)
		}
		layers[name] = a
	}
	funcs := map[string]artifact{}
	for _, name := range sortedKeys(st.Functions) {
		a, err := d.pack(ctx, st, st.Functions[name].Code, true, opts.Build)
		if err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
		funcs[name] = a
	}

	// Read-only checks next: what would fail part way fails before anything changes.
	if err := d.check(ctx, st); err != nil {
		return res, err
	}
	r := refs{}
	if err := d.eventSources(ctx, res, st, r); err != nil {
		return res, err
	}

	layerArns := map[string]string{}
	for _, name := range sortedKeys(st.Layers) {
		arn, err := d.layer(ctx, res, name, st.Layers[name], layers[name])
		if err != nil {
			return res, fmt.Errorf("layer %s: %w", name, err)
		}
		layerArns[name] = arn
	}
	ids := map[string]string{} // function name → logical ID
	for id, name := range st.functionIDs {
		ids[name] = id
	}
	var rollback error
	var owned []string // the ARNs of the stack's functions and queues
	for _, name := range sortedKeys(st.Functions) {
		f := *st.Functions[name]
		if len(f.Env) > 0 {
			f.Env = maps.Clone(f.Env)
			if err := r.resolveMap(f.Env); err != nil {
				return res, fmt.Errorf("function %s: environment variable %w", name, err)
			}
		}
		err := d.function(ctx, res, st, name, &f, funcs[name], layerArns, opts)
		var rb *RollbackError
		if errors.As(err, &rb) {
			rollback = errors.Join(rollback, err)
		} else if err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
		if !st.sam {
			continue
		}
		fn, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
		arn := aws.ToString(fn.Configuration.FunctionArn)
		owned = append(owned, arn)
		if id, ok := ids[name]; ok {
			r.set(id, name, map[string]string{"Arn": arn})
		}
		if err := d.mappings(ctx, res, name, arn, f.Alias, f.Mappings, r); err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
	}
	if st.sam {
		for _, id := range sortedKeys(st.Queues) {
			owned = append(owned, r[id+".Arn"])
		}
		// The stack's queues that left the file too: an event's subscription into one of them
		// went with the event, even while the queue waits for --prune.
		if d.SQS != nil {
			urls, err := d.stackQueues(ctx, st.Name)
			if err != nil {
				return res, err
			}
			for _, name := range sortedKeys(urls) {
				arn, err := d.queueArn(ctx, urls[name])
				if err != nil {
					return res, fmt.Errorf("queue %s: %w", name, err)
				}
				if !slices.Contains(owned, arn) {
					owned = append(owned, arn)
				}
			}
		}
		if err := d.subscriptions(ctx, res, st, owned, r); err != nil {
			return res, err
		}
		if err := d.apis(ctx, res, st); err != nil {
			return res, err
		}
	}
	if err := d.prune(ctx, res, st, opts.Prune); err != nil {
		return res, err
	}
	return res, rollback
}

// check runs the read-only checks of a deployment: the clients it needs are there, no queue,
// topic or stream of the template is another stack's, and no deployed stream would have to be
// resharded.
func (d *Deployer) check(ctx context.Context, st *Stack) error {
	switch {
	case len(st.Queues) > 0 && d.SQS == nil:
		return errors.New("the stack has SQS queues but the deployer no SQS client")
	case (len(st.Topics) > 0 || len(st.Subscriptions) > 0) && d.SNS == nil:
		return errors.New("the stack has SNS topics but the deployer no SNS client")
	case len(st.Streams) > 0 && d.Kinesis == nil:
		return errors.New("the stack has Kinesis streams but the deployer no Kinesis client")
	case len(st.APIs) > 0 && (d.Endpoint == "" || d.HTTP == nil):
		return errors.New("the stack has APIs but the deployer no Flint endpoint")
	}
	if _, err := queueOrder(st); err != nil {
		return err
	}
	if err := d.checkOwners(ctx, st); err != nil {
		return err
	}
	if len(st.Streams) > 0 {
		return d.checkStreams(ctx, st)
	}
	return nil
}

// eventSources creates or updates the stack's queues (dead-letter queues first), topics and
// streams, recording their references in r.
func (d *Deployer) eventSources(ctx context.Context, res *Result, st *Stack, r refs) error {
	order, err := queueOrder(st)
	if err != nil {
		return err
	}
	for _, id := range order {
		if err := d.queue(ctx, res, st, id, r); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	if len(st.Topics) > 0 {
		existing, err := d.topicArns(ctx)
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(st.Topics) {
			if err := d.topic(ctx, res, st, id, existing, r); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
	}
	for _, id := range sortedKeys(st.Streams) {
		if err := d.stream(ctx, res, st, id, r); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	return nil
}

// pack builds or reads the package at rel (relative to the stack file).
func (d *Deployer) pack(ctx context.Context, st *Stack, rel string, function bool, bo build.Options) (artifact, error) {
	path := rel
	if !filepath.IsAbs(path) {
		path = filepath.Join(st.Dir, rel)
	}
	info, err := os.Stat(path)
	if err != nil {
		return artifact{}, err
	}
	if !info.IsDir() {
		if !strings.EqualFold(filepath.Ext(path), ".zip") {
			return artifact{}, fmt.Errorf("%s is neither a directory nor a .zip file", rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return artifact{}, err
		}
		if int64(len(b)) > build.MaxZipped {
			return artifact{}, &build.LimitError{What: "zipped", Size: int64(len(b)), Limit: build.MaxZipped}
		}
		return artifact{zip: b, sha: build.Sha256(b), size: int64(len(b))}, nil
	}
	if function && build.IsSource(path) {
		r, err := build.Build(ctx, path, bo)
		if err != nil {
			return artifact{}, err
		}
		fmt.Fprintf(d.Out, "built %s: %s, %s zipped, %s unzipped\n", rel, r.Language, build.FormatSize(r.Size), build.FormatSize(r.Unzipped))
		return artifact{zip: r.Zip, sha: r.CodeSha256, size: r.Size, result: r}, nil
	}
	b, _, err := build.ZipDir(path, bo)
	if err != nil {
		return artifact{}, err
	}
	return artifact{zip: b, sha: build.Sha256(b), size: int64(len(b))}, nil
}

// prune deletes (or, without prune, lists) the functions tagged with the stack's name that the
// stack no longer has.
func (d *Deployer) prune(ctx context.Context, res *Result, st *Stack, prune bool) error {
	p := lambda.NewListFunctionsPaginator(d.Lambda, &lambda.ListFunctionsInput{})
	var gone []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list functions: %w", err)
		}
		for _, fc := range page.Functions {
			name := aws.ToString(fc.FunctionName)
			if _, ok := st.Functions[name]; ok {
				continue
			}
			got, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			if err != nil {
				continue // deleted meanwhile
			}
			if got.Tags[StackTag] == st.Name {
				gone = append(gone, name)
			}
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		if !prune {
			res.Unpruned = append(res.Unpruned, name)
			fmt.Fprintf(d.Out, "%s is no longer in the stack; --prune deletes it\n", name)
			continue
		}
		fn, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			return err
		}
		arn := aws.ToString(fn.Configuration.FunctionArn)
		if err := d.deleteSchedules(ctx, res, name, arn, nil); err != nil {
			return err
		}
		if err := d.deleteEvents(ctx, res, name, arn); err != nil {
			return err
		}
		if _, err := d.Lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
			return fmt.Errorf("delete function %s: %w", name, err)
		}
		d.change(res, Change{Kind: "function", Name: name, Action: "deleted"})
	}
	return d.pruneResources(ctx, res, st, prune)
}

// deleteEvents deletes the event source mappings and SNS subscriptions of a function being
// deleted.
func (d *Deployer) deleteEvents(ctx context.Context, res *Result, name, arn string) error {
	ms, err := d.functionMappings(ctx, arn)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if aws.ToString(m.State) == "Deleting" {
			continue
		}
		if err := d.deleteMapping(ctx, res, name, m); err != nil {
			return err
		}
	}
	return d.unsubscribeAll(ctx, res, arn)
}

// unsubscribeAll removes every lambda or sqs subscription whose endpoint is arn (a function's,
// with any qualifier, or a queue's).
func (d *Deployer) unsubscribeAll(ctx context.Context, res *Result, arn string) error {
	if d.SNS == nil {
		return nil
	}
	existing := map[subKey]string{}
	p := sns.NewListSubscriptionsPaginator(d.SNS, &sns.ListSubscriptionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		for _, s := range page.Subscriptions {
			existing[subKey{aws.ToString(s.TopicArn), aws.ToString(s.Protocol), aws.ToString(s.Endpoint)}] = aws.ToString(s.SubscriptionArn)
		}
	}
	return d.unsubscribe(ctx, res, existing, nil, []string{arn})
}

// pruneResources deletes (or, without prune, lists) the queues, topics, streams and APIs
// tagged with the stack's name that the stack no longer has. Each kind is looked for only
// when the Deployer has its client.
func (d *Deployer) pruneResources(ctx context.Context, res *Result, st *Stack, prune bool) error {
	keep := func(kind, name string) bool {
		if prune {
			return false
		}
		res.Unpruned = append(res.Unpruned, kind+" "+name)
		fmt.Fprintf(d.Out, "%s %s is no longer in the stack; --prune deletes it\n", kind, name)
		return true
	}
	if d.Endpoint != "" && d.HTTP != nil {
		names, err := d.stackAPIs(ctx, st.Name)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for id := range st.APIs {
			want[apiName(st.Name, id)] = true
		}
		slices.Sort(names)
		for _, name := range names {
			if want[name] || keep("api", name) {
				continue
			}
			if err := d.flint(ctx, http.MethodDelete, "/apis/"+url.PathEscape(name), nil, nil); err != nil {
				return fmt.Errorf("delete api %s: %w", name, err)
			}
			d.change(res, Change{Kind: "api", Name: name, Action: "deleted"})
		}
	}
	if d.SQS != nil {
		urls, err := d.stackQueues(ctx, st.Name)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for id, q := range st.Queues {
			want[q.name(st.Name, id)] = true
		}
		for _, name := range sortedKeys(urls) {
			if want[name] || keep("queue", name) {
				continue
			}
			if arn, err := d.queueArn(ctx, urls[name]); err == nil {
				if err := d.unsubscribeAll(ctx, res, arn); err != nil {
					return err
				}
			}
			if _, err := d.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(urls[name])}); err != nil && !isNoQueue(err) {
				return fmt.Errorf("delete queue %s: %w", name, err)
			}
			d.change(res, Change{Kind: "queue", Name: name, Action: "deleted"})
		}
	}
	if d.SNS != nil {
		arns, err := d.stackTopics(ctx, st.Name)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for id, t := range st.Topics {
			want[t.name(st.Name, id)] = true
		}
		for _, name := range sortedKeys(arns) {
			if want[name] || keep("topic", name) {
				continue
			}
			if _, err := d.SNS.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arns[name])}); err != nil && !isNoTopic(err) {
				return fmt.Errorf("delete topic %s: %w", name, err)
			}
			d.change(res, Change{Kind: "topic", Name: name, Action: "deleted"})
		}
	}
	if d.Kinesis != nil {
		names, err := d.stackStreams(ctx, st.Name)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for id, s := range st.Streams {
			want[s.name(st.Name, id)] = true
		}
		slices.Sort(names)
		for _, name := range names {
			if want[name] || keep("stream", name) {
				continue
			}
			if _, err := d.Kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil && !isNoStream(err) {
				return fmt.Errorf("delete stream %s: %w", name, err)
			}
			d.change(res, Change{Kind: "stream", Name: name, Action: "deleted"})
		}
	}
	return nil
}

// change records c and prints it.
func (d *Deployer) change(res *Result, c Change) {
	res.Changes = append(res.Changes, c)
	line := fmt.Sprintf("%-8s %s", c.Kind, c.Name)
	if c.Resource != "" {
		line += " " + c.Resource
	}
	line += ": " + c.Action
	if c.Detail != "" {
		line += " (" + c.Detail + ")"
	}
	fmt.Fprintln(d.Out, line)
}
