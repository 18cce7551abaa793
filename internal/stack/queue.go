// The stack's SQS queues through the SQS API: created with their attributes and the
// flint:stack tag, brought back to the template's attributes when they differ, and their !Ref
// (URL) and !GetAtt values (Arn, QueueName, QueueUrl) recorded for what refers to them.

package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Queue is an SQS queue (AWS::SQS::Queue). Attribute values may hold references.
type Queue struct {
	// Name is QueueName; "" names it <stack>-<logical ID> (.fifo for a FIFO queue).
	Name       string
	Attributes map[string]string
	Tags       map[string]string
}

// queueDefaults are the values SQS gives the attributes a template may set, so that one
// removed from the template goes back to its default.
var queueDefaults = map[string]string{"DelaySeconds": "0", "MaximumMessageSize": "262144",
	"MessageRetentionPeriod": "345600", "ReceiveMessageWaitTimeSeconds": "0", "VisibilityTimeout": "30",
	"RedrivePolicy": "", "RedriveAllowPolicy": ""}

func (q *Queue) name(stackName, id string) string {
	if q.Name != "" {
		return q.Name
	}
	suffix := ""
	if q.Attributes["FifoQueue"] == "true" {
		suffix = ".fifo"
	}
	return truncate(stackName+"-"+id, 80-len(suffix)) + suffix
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// queueOrder is the order queues are created in: a dead-letter queue before the queues whose
// redrive policy names it.
func queueOrder(st *Stack) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("queue %s: its redrive policies form a cycle", id)
		case 2:
			return nil
		}
		state[id] = 1
		q := st.Queues[id]
		for _, k := range sortedKeys(q.Attributes) {
			for _, dep := range refIDs(q.Attributes[k]) {
				if _, ok := st.Queues[dep]; ok {
					if err := visit(dep); err != nil {
						return err
					}
				}
			}
		}
		state[id] = 2
		order = append(order, id)
		return nil
	}
	for _, id := range sortedKeys(st.Queues) {
		if err := visit(id); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func isNoQueue(err error) bool {
	var nq *sqstypes.QueueDoesNotExist
	var ae smithy.APIError
	return errors.As(err, &nq) || (errors.As(err, &ae) &&
		(ae.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || ae.ErrorCode() == "QueueDoesNotExist"))
}

// queue creates or updates queue id and records its references.
func (d *Deployer) queue(ctx context.Context, res *Result, st *Stack, id string, r refs) error {
	q := st.Queues[id]
	name := q.name(st.Name, id)
	attrs := maps.Clone(q.Attributes)
	if err := r.resolveMap(attrs); err != nil {
		return err
	}
	tags := maps.Clone(q.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[StackTag] = st.Name
	var url string
	got, err := d.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	switch {
	case isNoQueue(err):
		out, err := d.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs, Tags: tags})
		if err != nil {
			return fmt.Errorf("create queue %s: %w", name, err)
		}
		url = aws.ToString(out.QueueUrl)
		d.change(res, Change{Kind: "queue", Name: name, Action: "created"})
	case err != nil:
		return fmt.Errorf("queue %s: %w", name, err)
	default:
		url = aws.ToString(got.QueueUrl)
		cur, err := d.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		if (cur.Attributes["FifoQueue"] == "true") != (attrs["FifoQueue"] == "true") {
			return fmt.Errorf("queue %s: FifoQueue cannot change; delete the queue or rename it", name)
		}
		want := maps.Clone(queueDefaults)
		maps.Copy(want, attrs)
		delete(want, "FifoQueue")
		if attrs["FifoQueue"] == "true" {
			for k, v := range map[string]string{"ContentBasedDeduplication": "false", "DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"} {
				if _, ok := want[k]; !ok {
					want[k] = v
				}
			}
		}
		set := map[string]string{}
		for _, k := range sortedKeys(want) {
			if cur.Attributes[k] != want[k] {
				set[k] = want[k]
			}
		}
		var what []string
		if len(set) > 0 {
			if _, err := d.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: set}); err != nil {
				return fmt.Errorf("queue %s: %w", name, err)
			}
			what = slices.Sorted(maps.Keys(set))
		}
		curTags, err := d.SQS.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
		if err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		if add := tagsToSet(curTags.Tags, tags); len(add) > 0 {
			if _, err := d.SQS.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: add}); err != nil {
				return fmt.Errorf("queue %s: %w", name, err)
			}
			what = append(what, "tags")
		}
		if len(what) > 0 {
			d.change(res, Change{Kind: "queue", Name: name, Action: "updated", Detail: strings.Join(what, ", ")})
		}
	}
	arn, err := d.queueArn(ctx, url)
	if err != nil {
		return fmt.Errorf("queue %s: %w", name, err)
	}
	r.set(id, url, map[string]string{"Arn": arn, "QueueName": name, "QueueUrl": url})
	return nil
}

func (d *Deployer) queueArn(ctx context.Context, url string) (string, error) {
	out, err := d.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", err
	}
	return out.Attributes["QueueArn"], nil
}

// tagsToSet are the tags of want that cur lacks or has with another value. A resource that
// exists without the stack tag was not made by a stack: it is adopted as it is, updated but
// never given the tag, so that --prune never deletes it (checkOwners refused one of another
// stack).
func tagsToSet(cur, want map[string]string) map[string]string {
	add := map[string]string{}
	for k, v := range want {
		if cv, ok := cur[k]; !ok || cv != v {
			add[k] = v
		}
	}
	if _, ok := cur[StackTag]; !ok {
		delete(add, StackTag)
	}
	return add
}

// ownerError refuses a resource another stack made.
func ownerError(kind, name string, tags map[string]string, stackName string) error {
	if owner, ok := tags[StackTag]; ok && owner != stackName {
		return fmt.Errorf("%s %s belongs to stack %s; rename it in this template", kind, name, owner)
	}
	return nil
}

// checkOwners refuses, before anything changes, a template whose queues or topics exist as
// another stack's (streams: checkStreams).
func (d *Deployer) checkOwners(ctx context.Context, st *Stack) error {
	for _, id := range sortedKeys(st.Queues) {
		name := st.Queues[id].name(st.Name, id)
		got, err := d.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if isNoQueue(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		tags, err := d.SQS.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: got.QueueUrl})
		if err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		if err := ownerError("queue", name, tags.Tags, st.Name); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	if len(st.Topics) == 0 {
		return nil
	}
	arns, err := d.topicArns(ctx)
	if err != nil {
		return err
	}
	for _, id := range sortedKeys(st.Topics) {
		name := st.Topics[id].name(st.Name, id)
		arn, ok := arns[name]
		if !ok {
			continue
		}
		tags, err := d.topicTags(ctx, arn)
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		if err := ownerError("topic", name, tags, st.Name); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	return nil
}

// stackQueues are the URLs of the queues tagged with the stack's name, by name.
func (d *Deployer) stackQueues(ctx context.Context, stackName string) (map[string]string, error) {
	out := map[string]string{}
	p := sqs.NewListQueuesPaginator(d.SQS, &sqs.ListQueuesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list queues: %w", err)
		}
		for _, url := range page.QueueUrls {
			tags, err := d.SQS.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
			if isNoQueue(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("queue %s: %w", url, err)
			}
			if tags.Tags[StackTag] == stackName {
				out[url[strings.LastIndex(url, "/")+1:]] = url
			}
		}
	}
	return out, nil
}
