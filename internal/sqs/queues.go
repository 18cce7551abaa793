package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/store"
)

// num is an integer member: a JSON number (JSON 1.0) or a string (the query protocol's form
// values become strings in the same document).
type num struct {
	v   int
	set bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return errInvalidParameter("Value %s for parameter is invalid. Reason: must be an integer.", s)
	}
	n.v, n.set = v, true
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// attrRule checks one settable queue attribute's value.
type attrRule struct {
	check    func(v string) bool
	fifoOnly bool
	create   bool // only at creation
}

func intRange(lo, hi int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && n >= lo && n <= hi
	}
}

func oneOf(vals ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(vals, v) }
}

func anyValue(string) bool { return true }

var settable = map[string]attrRule{
	"DelaySeconds":                  {check: intRange(0, 900)},
	"MaximumMessageSize":            {check: intRange(1024, maxMessage)},
	"MessageRetentionPeriod":        {check: intRange(60, 1209600)},
	"ReceiveMessageWaitTimeSeconds": {check: intRange(0, 20)},
	"VisibilityTimeout":             {check: intRange(0, 43200)},
	"RedrivePolicy":                 {check: anyValue}, // checked with the queues it names
	"RedriveAllowPolicy":            {check: anyValue},
	"Policy":                        {check: anyValue},
	"KmsMasterKeyId":                {check: anyValue},
	"KmsDataKeyReusePeriodSeconds":  {check: intRange(60, 86400)},
	"SqsManagedSseEnabled":          {check: oneOf("true", "false")},
	"FifoQueue":                     {check: oneOf("true", "false"), create: true},
	"ContentBasedDeduplication":     {check: oneOf("true", "false"), fifoOnly: true},
	"DeduplicationScope":            {check: oneOf("messageGroup", "queue"), fifoOnly: true},
	"FifoThroughputLimit":           {check: oneOf("perQueue", "perMessageGroupId"), fifoOnly: true},
}

// maxMessage is the largest message (body and attributes), in bytes.
const maxMessage = 262144

var readOnly = []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"}

type redrivePolicy struct {
	Target string
	Max    int
}

// parseRedrive reads a RedrivePolicy: {"deadLetterTargetArn": ARN, "maxReceiveCount": N}, N a
// number or a string of one (the console writes strings).
func parseRedrive(s string) (redrivePolicy, bool) {
	if s == "" {
		return redrivePolicy{}, false
	}
	var raw struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil || raw.Target == "" {
		return redrivePolicy{}, false
	}
	n, err := strconv.Atoi(strings.Trim(string(raw.Max), `"`))
	if err != nil || n < 1 || n > 1000 {
		return redrivePolicy{}, false
	}
	return redrivePolicy{Target: raw.Target, Max: n}, true
}

// normalize writes a valid RedrivePolicy as AWS returns it: {"deadLetterTargetArn":ARN,
// "maxReceiveCount":N}, N a number, whichever form it was given in.
func normalize(attrs map[string]string) {
	if p, ok := parseRedrive(attrs["RedrivePolicy"]); ok {
		b, _ := json.Marshal(struct {
			Target string `json:"deadLetterTargetArn"`
			Max    int    `json:"maxReceiveCount"`
		}{p.Target, p.Max})
		attrs["RedrivePolicy"] = string(b)
	}
}

// checkQueueAttributes validates attributes to set on a queue (fifo: the queue's kind); create
// says whether the queue is being created.
func (s *Service) checkQueueAttributes(ctx context.Context, attrs map[string]string, fifo, create bool) error {
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[k]
		rule, ok := settable[k]
		if !ok {
			return errInvalidAttributeName(k)
		}
		if rule.create && !create {
			return errInvalidAttributeName(k)
		}
		if rule.fifoOnly && !fifo {
			return errInvalidAttributeName(k)
		}
		if !rule.check(v) {
			return errInvalidAttributeValue(k)
		}
		if k == "RedrivePolicy" && v != "" {
			p, ok := parseRedrive(v)
			if !ok {
				return errInvalidParameter("Value %s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map with deadLetterTargetArn and maxReceiveCount (1 to 1000).", v)
			}
			dlq, err := s.byARN(ctx, p.Target)
			if err != nil {
				if isNotExist(err) {
					return errInvalidParameter("Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.", v)
				}
				return err
			}
			if dlq.fifo() != fifo {
				return errInvalidParameter("Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue as the source.", v)
			}
		}
	}
	return nil
}

type createQueueInput struct {
	QueueName  string            `json:"QueueName"`
	Attributes map[string]string `json:"Attributes"`
	Tags       map[string]string `json:"tags"`
}

type queueURLOutput struct {
	QueueUrl string `json:"QueueUrl"`
}

func defaults(fifo bool) map[string]string {
	a := map[string]string{"DelaySeconds": "0", "MaximumMessageSize": strconv.Itoa(maxMessage),
		"MessageRetentionPeriod": "345600", "ReceiveMessageWaitTimeSeconds": "0", "VisibilityTimeout": "30",
		"SqsManagedSseEnabled": "true"}
	if fifo {
		a["FifoQueue"], a["ContentBasedDeduplication"] = "true", "false"
		a["DeduplicationScope"], a["FifoThroughputLimit"] = "queue", "perQueue"
	}
	return a
}

func (s *Service) createQueue(ctx context.Context, c *call, in *createQueueInput) (any, error) {
	if in.QueueName == "" {
		return nil, errMissing("QueueName")
	}
	fifo := in.Attributes["FifoQueue"] == "true"
	if fifo {
		base, ok := strings.CutSuffix(in.QueueName, ".fifo")
		if !ok || !queueNameRE().MatchString(base) || len(in.QueueName) > 80 {
			return nil, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
	} else if !queueNameRE().MatchString(in.QueueName) {
		if strings.HasSuffix(in.QueueName, ".fifo") && queueNameRE().MatchString(strings.TrimSuffix(in.QueueName, ".fifo")) {
			return nil, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
		return nil, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if err := s.checkQueueAttributes(ctx, in.Attributes, fifo, true); err != nil {
		return nil, err
	}
	normalize(in.Attributes)
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	out := &queueURLOutput{QueueUrl: s.queueURL(c.base, in.QueueName)}
	if q, _, err := s.load(ctx, in.QueueName); err == nil {
		return out, sameAttributes(q, in.Attributes)
	} else if !isNotExist(err) {
		return nil, err
	}
	now := time.Now().Unix()
	q := &queue{Name: in.QueueName, Created: now, Modified: now, Attributes: defaults(fifo), Tags: in.Tags}
	maps.Copy(q.Attributes, in.Attributes)
	doc, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	if _, err := s.ensure(ctx, q); err != nil {
		return nil, err
	}
	if _, err := s.store.Create(ctx, q.Name, doc); errors.Is(err, store.ErrExists) {
		// Created meanwhile by another request: the same answer as if it had come first.
		if q, _, err := s.load(ctx, in.QueueName); err == nil {
			return out, sameAttributes(q, in.Attributes)
		}
	} else if err != nil {
		return nil, fmt.Errorf("store queue %s: %w", q.Name, err)
	}
	return out, nil
}

// sameAttributes refuses a CreateQueue of an existing queue with other attribute values.
func sameAttributes(q *queue, attrs map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if q.Attributes[k] != attrs[k] {
			return errQueueExists(k)
		}
	}
	return nil
}

func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return errInvalidParameter("Too many tags added for queue. Maximum number of tags per queue is 50.")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return errInvalidParameter("Tag keys must be between 1 and 128 characters in length, and tag values at most 256.")
		}
	}
	return nil
}

type getQueueURLInput struct {
	QueueName              string `json:"QueueName"`
	QueueOwnerAWSAccountId string `json:"QueueOwnerAWSAccountId"`
}

func (s *Service) getQueueURL(ctx context.Context, c *call, in *getQueueURLInput) (any, error) {
	if in.QueueName == "" {
		return nil, errMissing("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != s.account {
		return nil, errNotExist()
	}
	if _, _, err := s.load(ctx, in.QueueName); err != nil {
		return nil, err
	}
	return &queueURLOutput{QueueUrl: s.queueURL(c.base, in.QueueName)}, nil
}

type queueInput struct {
	QueueUrl string `json:"QueueUrl"`
}

type getQueueAttributesInput struct {
	QueueUrl       string   `json:"QueueUrl"`
	AttributeNames []string `json:"AttributeNames"`
}

type attributesOutput struct {
	Attributes map[string]string `json:"Attributes,omitempty"`
}

func (s *Service) getQueueAttributes(ctx context.Context, _ *call, in *getQueueAttributesInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			for k := range q.Attributes {
				want[k] = true
			}
			for _, k := range readOnly {
				want[k] = true
			}
			continue
		}
		if _, ok := settable[n]; !ok && !slices.Contains(readOnly, n) {
			return nil, errInvalidAttributeName(n)
		}
		want[n] = true
	}
	out := map[string]string{}
	for k := range want {
		if v, ok := q.Attributes[k]; ok {
			out[k] = v
		}
	}
	if want["QueueArn"] {
		out["QueueArn"] = s.ARN(q.Name)
	}
	if want["CreatedTimestamp"] {
		out["CreatedTimestamp"] = strconv.FormatInt(q.Created, 10)
	}
	if want["LastModifiedTimestamp"] {
		out["LastModifiedTimestamp"] = strconv.FormatInt(q.Modified, 10)
	}
	if want["ApproximateNumberOfMessages"] || want["ApproximateNumberOfMessagesNotVisible"] || want["ApproximateNumberOfMessagesDelayed"] {
		visible, inflight, delayed, err := s.depth(ctx, q)
		if err != nil {
			return nil, err
		}
		set := func(k string, n uint64) {
			if want[k] {
				out[k] = strconv.FormatUint(n, 10)
			}
		}
		set("ApproximateNumberOfMessages", visible)
		set("ApproximateNumberOfMessagesNotVisible", inflight)
		set("ApproximateNumberOfMessagesDelayed", delayed)
	}
	return &attributesOutput{Attributes: out}, nil
}

// depth counts queue q's messages: waiting to be received, received and not yet deleted, and
// delayed.
func (s *Service) depth(ctx context.Context, q *queue) (visible, inflight, delayed uint64, err error) {
	c, err := s.consumer(ctx, q)
	if err != nil {
		return 0, 0, 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue %s consumer: %w", q.Name, err)
	}
	st, err := s.js.Stream(ctx, q.stream())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue %s stream: %w", q.Name, err)
	}
	si, err := st.Info(ctx, jetstream.WithSubjectFilter(delaySubject+q.stream()+".*"))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue %s stream: %w", q.Name, err)
	}
	for _, n := range si.State.Subjects {
		delayed += n
	}
	return info.NumPending, uint64(max(info.NumAckPending, 0)), delayed, nil
}

type setQueueAttributesInput struct {
	QueueUrl   string            `json:"QueueUrl"`
	Attributes map[string]string `json:"Attributes"`
}

func (s *Service) setQueueAttributes(ctx context.Context, _ *call, in *setQueueAttributesInput) (any, error) {
	return struct{}{}, s.modify(ctx, in.QueueUrl, func(q *queue) error {
		if err := s.checkQueueAttributes(ctx, in.Attributes, q.fifo(), false); err != nil {
			return err
		}
		normalize(in.Attributes)
		maps.Copy(q.Attributes, in.Attributes)
		if q.Attributes["RedrivePolicy"] == "" {
			delete(q.Attributes, "RedrivePolicy")
		}
		q.Modified = time.Now().Unix()
		return nil
	}, true)
}

// modify changes the queue url names and stores it; reconfigure applies the change to its stream
// and consumer (VisibilityTimeout, MessageRetentionPeriod) first.
func (s *Service) modify(ctx context.Context, url string, change func(q *queue) error, reconfigure bool) error {
	for range 5 {
		q, rev, err := s.byURL(ctx, url)
		if err != nil {
			return err
		}
		if err := change(q); err != nil {
			return err
		}
		doc, err := json.Marshal(q)
		if err != nil {
			return err
		}
		if reconfigure {
			if _, err := s.ensure(ctx, q); err != nil {
				return err
			}
		}
		if _, err := s.store.Update(ctx, q.Name, doc, rev); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return fmt.Errorf("store queue %s: %w", q.Name, err)
		}
		return nil
	}
	return errInternal(errors.New("queue modified concurrently"))
}

type listQueuesInput struct {
	QueueNamePrefix string `json:"QueueNamePrefix"`
	NextToken       string `json:"NextToken"`
	MaxResults      num    `json:"MaxResults"`
}

type listQueuesOutput struct {
	QueueUrls []string `json:"QueueUrls,omitempty"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (s *Service) listQueues(ctx context.Context, c *call, in *listQueuesInput) (any, error) {
	limit := 1000
	if in.MaxResults.set {
		if in.MaxResults.v < 1 || in.MaxResults.v > 1000 {
			return nil, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.", in.MaxResults.v)
		}
		limit = in.MaxResults.v
	} else if in.NextToken != "" {
		return nil, errInvalidParameter("MaxResults is a mandatory parameter when you provide a value for NextToken.")
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return nil, errInvalidParameter("Invalid NextToken value.")
		}
		after = string(b)
	}
	keys, err := s.store.Keys(ctx, ">")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	out := &listQueuesOutput{}
	for _, k := range keys {
		if !strings.HasPrefix(k, in.QueueNamePrefix) || (after != "" && k <= after) {
			continue
		}
		if len(out.QueueUrls) == limit {
			if in.MaxResults.set {
				out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(after))
			}
			break
		}
		out.QueueUrls = append(out.QueueUrls, s.queueURL(c.base, k))
		after = k
	}
	return out, nil
}

func (s *Service) deleteQueue(ctx context.Context, _ *call, in *queueInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, q.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("delete queue %s: %w", q.Name, err)
	}
	s.forget(q.stream())
	if err := s.js.DeleteStream(ctx, q.stream()); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("delete queue %s stream: %w", q.Name, err)
	}
	return struct{}{}, nil
}

func (s *Service) purgeQueue(ctx context.Context, _ *call, in *queueInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	st, err := s.js.Stream(ctx, q.stream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return struct{}{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := st.Purge(ctx); err != nil {
		return nil, fmt.Errorf("purge queue %s: %w", q.Name, err)
	}
	return struct{}{}, nil
}

type tagQueueInput struct {
	QueueUrl string            `json:"QueueUrl"`
	Tags     map[string]string `json:"Tags"`
}

func (s *Service) tagQueue(ctx context.Context, _ *call, in *tagQueueInput) (any, error) {
	if len(in.Tags) == 0 {
		return nil, errMissing("Tags")
	}
	return struct{}{}, s.modify(ctx, in.QueueUrl, func(q *queue) error {
		merged := maps.Clone(q.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, in.Tags)
		if err := checkTags(merged); err != nil {
			return err
		}
		q.Tags = merged
		return nil
	}, false)
}

type untagQueueInput struct {
	QueueUrl string   `json:"QueueUrl"`
	TagKeys  []string `json:"TagKeys"`
}

func (s *Service) untagQueue(ctx context.Context, _ *call, in *untagQueueInput) (any, error) {
	if len(in.TagKeys) == 0 {
		return nil, errMissing("TagKeys")
	}
	return struct{}{}, s.modify(ctx, in.QueueUrl, func(q *queue) error {
		for _, k := range in.TagKeys {
			delete(q.Tags, k)
		}
		return nil
	}, false)
}

type tagsOutput struct {
	Tags map[string]string `json:"Tags,omitempty"`
}

func (s *Service) listQueueTags(ctx context.Context, _ *call, in *queueInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return &tagsOutput{Tags: q.Tags}, nil
}
