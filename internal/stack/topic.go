// The stack's SNS topics and subscriptions through the SNS API. A topic is found by name,
// created with the flint:stack tag and brought back to the template's attributes; a
// subscription is found by topic, protocol and endpoint, created or given the template's
// attributes. Subscriptions whose endpoint is one of the stack's functions or queues and that
// the template no longer has are unsubscribed.

package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
)

// Topic is an SNS topic (AWS::SNS::Topic). Attribute values may hold references.
type Topic struct {
	// Name is TopicName; "" names it <stack>-<logical ID> (.fifo for a FIFO topic).
	Name       string
	Attributes map[string]string
	Tags       map[string]string
}

func (t *Topic) name(stackName, id string) string {
	if t.Name != "" {
		return t.Name
	}
	suffix := ""
	if t.Attributes["FifoTopic"] == "true" {
		suffix = ".fifo"
	}
	return truncate(stackName+"-"+id, 256-len(suffix)) + suffix
}

// Subscription subscribes an endpoint to a topic: an AWS::SNS::Subscription, an entry of a
// topic's Subscription list, or a function's SNS event. Topic and Endpoint may hold
// references.
type Subscription struct {
	Topic, Protocol, Endpoint string
	Attributes                map[string]string
	// Owner names what in the template asked for it, for messages.
	Owner string
}

// topicAttrDefaults are the values a topic attribute the template may set has when unset.
var topicAttrDefaults = map[string]string{"DisplayName": ""}

func isNoTopic(err error) bool {
	var nf *snstypes.NotFoundException
	var ae smithy.APIError
	return errors.As(err, &nf) || (errors.As(err, &ae) && ae.ErrorCode() == "NotFound")
}

// topicArns are the ARNs of every topic, by name.
func (d *Deployer) topicArns(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	p := sns.NewListTopicsPaginator(d.SNS, &sns.ListTopicsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list topics: %w", err)
		}
		for _, t := range page.Topics {
			arn := aws.ToString(t.TopicArn)
			out[arn[strings.LastIndex(arn, ":")+1:]] = arn
		}
	}
	return out, nil
}

// topic creates or updates topic id and records its references.
func (d *Deployer) topic(ctx context.Context, res *Result, st *Stack, id string, existing map[string]string, r refs) error {
	t := st.Topics[id]
	name := t.name(st.Name, id)
	attrs := maps.Clone(t.Attributes)
	if err := r.resolveMap(attrs); err != nil {
		return err
	}
	tags := maps.Clone(t.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[StackTag] = st.Name
	arn, ok := existing[name]
	if !ok {
		var tl []snstypes.Tag
		for _, k := range sortedKeys(tags) {
			tl = append(tl, snstypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		out, err := d.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs, Tags: tl})
		if err != nil {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
		arn = aws.ToString(out.TopicArn)
		d.change(res, Change{Kind: "topic", Name: name, Action: "created"})
	} else {
		cur, err := d.SNS.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		if (cur.Attributes["FifoTopic"] == "true") != (attrs["FifoTopic"] == "true") {
			return fmt.Errorf("topic %s: FifoTopic cannot change; delete the topic or rename it", name)
		}
		want := maps.Clone(topicAttrDefaults)
		maps.Copy(want, attrs)
		delete(want, "FifoTopic")
		var what []string
		for _, k := range sortedKeys(want) {
			if cur.Attributes[k] == want[k] || (k == "ContentBasedDeduplication" && want[k] == "false" && cur.Attributes[k] == "") {
				continue
			}
			if _, err := d.SNS.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: aws.String(arn),
				AttributeName: aws.String(k), AttributeValue: aws.String(want[k])}); err != nil {
				return fmt.Errorf("topic %s: set %s: %w", name, k, err)
			}
			what = append(what, k)
		}
		have, err := d.topicTags(ctx, arn)
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		if add := tagsToSet(have, tags); len(add) > 0 {
			var tl []snstypes.Tag
			for _, k := range sortedKeys(add) {
				tl = append(tl, snstypes.Tag{Key: aws.String(k), Value: aws.String(add[k])})
			}
			if _, err := d.SNS.TagResource(ctx, &sns.TagResourceInput{ResourceArn: aws.String(arn), Tags: tl}); err != nil {
				return fmt.Errorf("topic %s: %w", name, err)
			}
			what = append(what, "tags")
		}
		if len(what) > 0 {
			d.change(res, Change{Kind: "topic", Name: name, Action: "updated", Detail: strings.Join(what, ", ")})
		}
	}
	r.set(id, arn, map[string]string{"TopicArn": arn, "TopicName": name})
	return nil
}

func (d *Deployer) topicTags(ctx context.Context, arn string) (map[string]string, error) {
	out, err := d.SNS.ListTagsForResource(ctx, &sns.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	for _, tg := range out.Tags {
		have[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return have, nil
}

// stackTopics are the ARNs of the topics tagged with the stack's name, by name.
func (d *Deployer) stackTopics(ctx context.Context, stackName string) (map[string]string, error) {
	all, err := d.topicArns(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, arn := range all {
		tags, err := d.topicTags(ctx, arn)
		if isNoTopic(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", name, err)
		}
		if tags[StackTag] == stackName {
			out[name] = arn
		}
	}
	return out, nil
}

// subKey identifies a subscription as SNS does: by topic, protocol and endpoint.
type subKey struct{ topic, protocol, endpoint string }

// subscriptionAttrDefaults are the values of the attributes a template sets when it does not.
var subscriptionAttrDefaults = map[string]string{"FilterPolicy": "", "RedrivePolicy": "", "RawMessageDelivery": "false"}

// subscriptions creates or updates the stack's subscriptions and unsubscribes the ones whose
// endpoint is one of owned (the stack's function and queue ARNs, a function's also with any
// qualifier) that the template no longer has.
func (d *Deployer) subscriptions(ctx context.Context, res *Result, st *Stack, owned []string, r refs) error {
	if d.SNS == nil {
		return nil // check refused a stack with subscriptions
	}
	want := map[subKey]map[string]string{}
	var order []subKey
	for _, s := range st.Subscriptions {
		topic, err := r.resolve(s.Topic)
		if err != nil {
			return fmt.Errorf("%s: subscription topic: %w", s.Owner, err)
		}
		endpoint, err := r.resolve(s.Endpoint)
		if err != nil {
			return fmt.Errorf("%s: subscription endpoint: %w", s.Owner, err)
		}
		attrs := maps.Clone(s.Attributes)
		if attrs == nil {
			attrs = map[string]string{}
		}
		if err := r.resolveMap(attrs); err != nil {
			return fmt.Errorf("%s: %w", s.Owner, err)
		}
		k := subKey{topic, s.Protocol, endpoint}
		if _, dup := want[k]; dup {
			return fmt.Errorf("%s: %s subscribes %s to %s a second time", s.Owner, s.Protocol, endpoint, topic)
		}
		want[k] = attrs
		order = append(order, k)
	}
	existing := map[subKey]string{} // → subscription ARN
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
	for _, k := range order {
		attrs := want[k]
		what := fmt.Sprintf("%s → %s %s", topicName(k.topic), k.protocol, k.endpoint)
		arn, ok := existing[k]
		if !ok {
			set := map[string]string{}
			for a, v := range attrs {
				if v != "" {
					set[a] = v
				}
			}
			if _, err := d.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(k.topic), Protocol: aws.String(k.protocol),
				Endpoint: aws.String(k.endpoint), Attributes: set, ReturnSubscriptionArn: true}); err != nil {
				return fmt.Errorf("subscribe %s: %w", what, err)
			}
			d.change(res, Change{Kind: "subscription", Name: topicName(k.topic), Resource: k.protocol + " " + k.endpoint, Action: "created"})
			continue
		}
		if arn == "pending confirmation" {
			continue // an HTTP endpoint that has not confirmed yet: nothing to compare
		}
		cur, err := d.SNS.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("subscription %s: %w", what, err)
		}
		full := maps.Clone(subscriptionAttrDefaults)
		maps.Copy(full, attrs)
		if full["FilterPolicyScope"] == "" && full["FilterPolicy"] != "" {
			full["FilterPolicyScope"] = "MessageAttributes"
		}
		var changed []string
		for _, a := range sortedKeys(full) {
			if full[a] == "" && a == "FilterPolicyScope" || cur.Attributes[a] == full[a] {
				continue
			}
			if _, err := d.SNS.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn),
				AttributeName: aws.String(a), AttributeValue: aws.String(full[a])}); err != nil {
				return fmt.Errorf("subscription %s: set %s: %w", what, a, err)
			}
			changed = append(changed, a)
		}
		if len(changed) > 0 {
			d.change(res, Change{Kind: "subscription", Name: topicName(k.topic), Resource: k.protocol + " " + k.endpoint,
				Action: "updated", Detail: strings.Join(changed, ", ")})
		}
	}
	return d.unsubscribe(ctx, res, existing, want, owned)
}

// unsubscribe removes the subscriptions in existing, not in want, whose endpoint is one of
// owned (or a qualified ARN of one).
func (d *Deployer) unsubscribe(ctx context.Context, res *Result, existing map[subKey]string, want map[subKey]map[string]string, owned []string) error {
	var gone []subKey
	for k := range existing {
		if _, ok := want[k]; ok || (k.protocol != "lambda" && k.protocol != "sqs") {
			continue
		}
		for _, o := range owned {
			if k.endpoint == o || strings.HasPrefix(k.endpoint, o+":") && k.protocol == "lambda" {
				gone = append(gone, k)
				break
			}
		}
	}
	slices.SortFunc(gone, func(a, b subKey) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.protocol, b.protocol), cmp.Compare(a.endpoint, b.endpoint))
	})
	for _, k := range gone {
		arn := existing[k]
		if arn == "pending confirmation" {
			continue
		}
		if _, err := d.SNS.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil && !isNoTopic(err) {
			return fmt.Errorf("unsubscribe %s %s from %s: %w", k.protocol, k.endpoint, topicName(k.topic), err)
		}
		d.change(res, Change{Kind: "subscription", Name: topicName(k.topic), Resource: k.protocol + " " + k.endpoint, Action: "deleted"})
	}
	return nil
}

// topicName is the name in a topic ARN.
func topicName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }
