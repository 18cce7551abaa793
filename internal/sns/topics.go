package sns

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/flint-run/flint/internal/awsquery"
	"github.com/flint-run/flint/internal/store"
)

// flag is a boolean parameter: the query protocol sends "true"/"false".
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	*f = flag(strings.EqualFold(s, "true"))
	return nil
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type createTopicInput struct {
	Name       string            `json:"Name"`
	Attributes map[string]string `json:"Attributes"`
	Tags       []tag             `json:"Tags"`
}

type topicArnOutput struct {
	TopicArn string `json:"TopicArn"`
}

// topicAttributes are the attributes a topic may be given (SetTopicAttributes; FifoTopic only
// at CreateTopic).
var topicAttributes = map[string]bool{
	"DisplayName": true, "Policy": true, "DeliveryPolicy": true, "KmsMasterKeyId": true, "TracingConfig": true,
	"SignatureVersion": true, "ContentBasedDeduplication": true, "FifoTopic": true, "ArchivePolicy": true,
	"DataProtectionPolicy": true, "FifoThroughputScope": true,
}

const fifoNameMessage = "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."

func checkTopicAttribute(name, value string, fifo, create bool) error {
	if !topicAttributes[name] || (name == "FifoTopic" && !create) {
		return errInvalid("AttributeName")
	}
	switch name {
	case "FifoTopic", "ContentBasedDeduplication":
		if value != "true" && value != "false" {
			return errInvalid("Attributes Reason: " + name + ": Invalid value [" + value + "]. Must be true or false.")
		}
		if name == "ContentBasedDeduplication" && value == "true" && !fifo {
			return errInvalid("Attributes Reason: Content based deduplication can only be set for FIFO topics")
		}
	case "SignatureVersion":
		if value != "1" && value != "2" {
			return errInvalid("Attributes Reason: SignatureVersion: Invalid value [" + value + "]. Must be 1 or 2.")
		}
	case "Policy", "DeliveryPolicy", "DataProtectionPolicy", "ArchivePolicy":
		if value != "" && !json.Valid([]byte(value)) {
			return errInvalid("Attributes Reason: " + name + ": failed to parse JSON.")
		}
	}
	return nil
}

func tagMap(tags []tag) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	if len(tags) > 50 {
		return nil, newError("TagLimitExceeded", 400, "Could not complete request: tag quota of per resource exceeded")
	}
	m := map[string]string{}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return nil, errInvalid("Tags")
		}
		m[t.Key] = t.Value
	}
	return m, nil
}

func (s *Service) createTopic(ctx context.Context, _ *call, in *createTopicInput) (any, error) {
	fifo := in.Attributes["FifoTopic"] == "true"
	if fifo && (!strings.HasSuffix(in.Name, ".fifo") || !validName(in.Name, true)) {
		return nil, errInvalid(fifoNameMessage)
	}
	if !validName(in.Name, fifo) {
		return nil, errInvalid("Topic Name")
	}
	attrs := map[string]string{}
	for k, v := range in.Attributes {
		if err := checkTopicAttribute(k, v, fifo, true); err != nil {
			return nil, err
		}
		attrs[k] = v
	}
	if !fifo {
		delete(attrs, "FifoTopic")
	}
	tags, err := tagMap(in.Tags)
	if err != nil {
		return nil, err
	}
	t := &topic{Name: in.Name, Arn: s.topicARN(in.Name), Attributes: attrs, Tags: tags}
	for {
		_, err := s.store.Create(ctx, topicKey(in.Name), marshal(t))
		if err == nil {
			return &topicArnOutput{TopicArn: t.Arn}, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, err
		}
		// Idempotent by name: the same attributes and tags are the same topic.
		old, _, err := s.loadTopic(ctx, in.Name)
		if isNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		for k, v := range attrs {
			if old.Attributes[k] != v {
				return nil, errInvalid("Attributes Reason: Topic already exists with different attributes")
			}
		}
		for k, v := range tags {
			if ov, ok := old.Tags[k]; ok && ov != v {
				return nil, errInvalid("Tags Reason: Topic already exists with different tags")
			}
		}
		return &topicArnOutput{TopicArn: old.Arn}, nil
	}
}

func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "NotFound"
}

type topicInput struct {
	TopicArn string `json:"TopicArn"`
}

func (s *Service) deleteTopic(ctx context.Context, _ *call, in *topicInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if isNotFound(err) {
		return nil, nil // DeleteTopic of a topic that does not exist succeeds, as on SNS
	}
	if err != nil {
		return nil, err
	}
	subs, err := s.subscriptions(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		if err := s.deleteSub(ctx, sub); err != nil {
			return nil, err
		}
	}
	if err := s.store.Delete(ctx, topicKey(t.Name)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return nil, nil
}

type listInput struct {
	NextToken string `json:"NextToken"`
}

type topicEntry struct {
	TopicArn string `json:"TopicArn"`
}

type listTopicsOutput struct {
	Topics    []topicEntry `json:"Topics"`
	NextToken string       `json:"NextToken,omitempty"`
}

// page returns up to n of keys after the token (the last key of the previous page).
func page[T any](items []T, key func(T) string, token string, n int) ([]T, string) {
	start := 0
	if token != "" {
		for start < len(items) && key(items[start]) <= token {
			start++
		}
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next
}

func (s *Service) listTopics(ctx context.Context, _ *call, in *listInput) (any, error) {
	keys, err := s.store.Keys(ctx, "topic.*")
	if err != nil {
		return nil, err
	}
	arns := make([]string, 0, len(keys))
	for _, k := range keys {
		arns = append(arns, s.topicARN(strings.ReplaceAll(strings.TrimPrefix(k, "topic."), "=", ".")))
	}
	slices.Sort(arns) // the token is the last ARN of a page
	pg, next := page(arns, func(a string) string { return a }, in.NextToken, 100)
	out := &listTopicsOutput{Topics: []topicEntry{}, NextToken: next}
	for _, a := range pg {
		out.Topics = append(out.Topics, topicEntry{TopicArn: a})
	}
	return out, nil
}

type attributesOutput struct {
	Attributes map[string]string `json:"Attributes"`
}

func (s *Service) getTopicAttributes(ctx context.Context, _ *call, in *topicInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if err != nil {
		return nil, err
	}
	subs, err := s.subscriptions(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	confirmed, pending := 0, 0
	for _, sub := range subs {
		if sub.Pending {
			pending++
		} else {
			confirmed++
		}
	}
	attrs := map[string]string{
		"TopicArn": t.Arn, "Owner": s.account, "DisplayName": "", "SubscriptionsConfirmed": strconv.Itoa(confirmed),
		"SubscriptionsPending": strconv.Itoa(pending), "SubscriptionsDeleted": "0",
		"Policy": defaultPolicy(t.Arn, s.account), "EffectiveDeliveryPolicy": defaultDeliveryPolicy,
	}
	if t.fifo() {
		attrs["FifoTopic"] = "true"
		attrs["ContentBasedDeduplication"] = "false"
	}
	maps.Copy(attrs, t.Attributes)
	return &attributesOutput{Attributes: attrs}, nil
}

const defaultDeliveryPolicy = `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`

func defaultPolicy(arn, account string) string {
	return `{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"` +
		arn + `","Condition":{"StringEquals":{"AWS:SourceOwner":"` + account + `"}}}]}`
}

type setAttributeInput struct {
	TopicArn        string  `json:"TopicArn"`
	SubscriptionArn string  `json:"SubscriptionArn"`
	AttributeName   string  `json:"AttributeName"`
	AttributeValue  *string `json:"AttributeValue"`
}

func (s *Service) setTopicAttributes(ctx context.Context, _ *call, in *setAttributeInput) (any, error) {
	if in.AttributeName == "" {
		return nil, errInvalid("AttributeName")
	}
	val := ""
	if in.AttributeValue != nil {
		val = *in.AttributeValue
	}
	return nil, s.modifyTopic(ctx, in.TopicArn, func(t *topic) error {
		if err := checkTopicAttribute(in.AttributeName, val, t.fifo(), false); err != nil {
			return err
		}
		t.Attributes[in.AttributeName] = val
		return nil
	})
}

// modifyTopic applies change to the topic's document, retrying on a concurrent update.
func (s *Service) modifyTopic(ctx context.Context, arn string, change func(t *topic) error) error {
	for {
		t, rev, err := s.topicByARN(ctx, arn, "TopicArn")
		if err != nil {
			return err
		}
		if t.Attributes == nil {
			t.Attributes = map[string]string{}
		}
		if err := change(t); err != nil {
			return err
		}
		_, err = s.store.Update(ctx, topicKey(t.Name), marshal(t), rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
}

type tagResourceInput struct {
	ResourceArn string   `json:"ResourceArn"`
	Tags        []tag    `json:"Tags"`
	TagKeys     []string `json:"TagKeys"`
}

func (s *Service) resourceNotFound() *Error {
	return newError("ResourceNotFound", 404, "Resource does not exist")
}

func (s *Service) tagResource(ctx context.Context, _ *call, in *tagResourceInput) (any, error) {
	tags, err := tagMap(in.Tags)
	if err != nil {
		return nil, err
	}
	err = s.modifyTopic(ctx, in.ResourceArn, func(t *topic) error {
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		maps.Copy(t.Tags, tags)
		if len(t.Tags) > 50 {
			return newError("TagLimitExceeded", 400, "Could not complete request: tag quota of per resource exceeded")
		}
		return nil
	})
	if isNotFound(err) {
		return nil, s.resourceNotFound()
	}
	if err != nil {
		return nil, err
	}
	return awsquery.Empty{}, nil
}

func (s *Service) untagResource(ctx context.Context, _ *call, in *tagResourceInput) (any, error) {
	err := s.modifyTopic(ctx, in.ResourceArn, func(t *topic) error {
		for _, k := range in.TagKeys {
			delete(t.Tags, k)
		}
		return nil
	})
	if isNotFound(err) {
		return nil, s.resourceNotFound()
	}
	if err != nil {
		return nil, err
	}
	return awsquery.Empty{}, nil
}

type tagsOutput struct {
	Tags []tag `json:"Tags"`
}

func (s *Service) listTagsForResource(ctx context.Context, _ *call, in *tagResourceInput) (any, error) {
	t, _, err := s.topicByARN(ctx, in.ResourceArn, "ResourceArn")
	if isNotFound(err) {
		return nil, s.resourceNotFound()
	}
	if err != nil {
		return nil, err
	}
	out := &tagsOutput{Tags: []tag{}}
	for _, k := range sortedKeys(t.Tags) {
		out.Tags = append(out.Tags, tag{Key: k, Value: t.Tags[k]})
	}
	return out, nil
}
