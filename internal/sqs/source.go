package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/esm"
)

var _ esm.SQSQueues = (*Service)(nil)

// Source is queue arn as a Lambda mapping reads it: through the queue's shared consumer, so
// the mapping competes with ReceiveMessage, and with the queue's visibility timeout and
// redrive policy.
func (s *Service) Source(ctx context.Context, arn string) (*esm.SQSQueue, error) {
	q, err := s.byARN(ctx, arn)
	if err != nil {
		return nil, err
	}
	c, err := s.consumer(ctx, q)
	if err != nil {
		return nil, err
	}
	name := q.Name
	// The queue as last read: batches read it afresh (Settings) and dead-letter by it, at once.
	var current atomic.Pointer[queue]
	current.Store(q)
	src := &esm.SQSQueue{Stream: q.stream(), Consumer: c}
	src.Settings = func(ctx context.Context) (time.Duration, int) {
		if fresh, _, err := s.load(ctx, name); err == nil {
			current.Store(fresh)
		}
		q := current.Load()
		_, maxReceive := q.redrive()
		return q.visibility(), maxReceive
	}
	src.Record = func(msg jetstream.Msg, received int, eventSourceARN, region string) (string, json.RawMessage, string, error) {
		m, err := decode(msg)
		if err != nil {
			return "", nil, "", err
		}
		b, err := json.Marshal(lambdaRecord(msg, m, received, eventSourceARN, region, s.account))
		return m.ID, b, m.Trace, err
	}
	src.DeadLetter = func(ctx context.Context, msg jetstream.Msg, received int) error {
		q := current.Load()
		dlq, _ := q.redrive()
		if dlq == "" {
			return fmt.Errorf("queue %s has no dead-letter queue", name)
		}
		m, err := decode(msg)
		if err != nil {
			return err
		}
		return s.deadLetter(ctx, q, dlq, msg, m, received)
	}
	return src, nil
}

// record is one record of Lambda's SQS event.
type record struct {
	MessageID              string                     `json:"messageId"`
	ReceiptHandle          string                     `json:"receiptHandle"`
	Body                   string                     `json:"body"`
	Attributes             map[string]string          `json:"attributes"`
	MessageAttributes      map[string]lambdaAttrValue `json:"messageAttributes"`
	MD5OfMessageAttributes *string                    `json:"md5OfMessageAttributes,omitempty"`
	MD5OfBody              string                     `json:"md5OfBody"`
	EventSource            string                     `json:"eventSource"`
	EventSourceARN         string                     `json:"eventSourceARN"`
	AWSRegion              string                     `json:"awsRegion"`
}

// lambdaAttrValue is a message attribute as Lambda's SQS event carries it (camelCase, lists
// always present).
type lambdaAttrValue struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// lambdaRecord renders a delivered message as Lambda's SQS event record. Its receiptHandle is
// the one ReceiveMessage would give, so a function may delete or extend it with the SQS API.
func lambdaRecord(msg jetstream.Msg, m *stored, received int, arn, region, account string) record {
	r := record{MessageID: m.ID, ReceiptHandle: base64.RawURLEncoding.EncodeToString([]byte(msg.Reply())),
		Body: string(m.Body), MD5OfBody: bodyMD5(string(m.Body)), EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: region,
		MessageAttributes: map[string]lambdaAttrValue{},
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(received),
			"SentTimestamp": strconv.FormatInt(m.Sent.UnixMilli(), 10), "SenderId": account,
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)}}
	if m.Group != "" {
		r.Attributes["MessageGroupId"] = m.Group
	}
	if m.Dedup != "" {
		r.Attributes["MessageDeduplicationId"] = m.Dedup
		r.Attributes["SequenceNumber"] = fmt.Sprintf("%020d", m.Seq)
	}
	if m.Trace != "" {
		r.Attributes["AWSTraceHeader"] = m.Trace
	}
	for k, v := range m.Attrs {
		r.MessageAttributes[k] = lambdaAttrValue{StringValue: v.StringValue, BinaryValue: v.BinaryValue,
			StringListValues: nonNil(v.StringListValues), BinaryListValues: nonNilB(v.BinaryListValues), DataType: v.DataType}
	}
	if sum := AttributesMD5(m.Attrs); sum != "" {
		r.MD5OfMessageAttributes = &sum
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilB(s [][]byte) [][]byte {
	if s == nil {
		return [][]byte{}
	}
	return s
}
