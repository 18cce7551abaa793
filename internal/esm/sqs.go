package esm

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SQS API queues: a mapping over arn:aws:sqs:REGION:ACCOUNT:NAME reads a queue made with the SQS API
// (internal/sqs) through the queue's own shared consumer, the one ReceiveMessage uses, so the
// function and any SQS client compete for messages as on SQS. The queue decides what the
// mapping's Flint extensions decide for arn:flint queues: its VisibilityTimeout is how long a
// failed batch stays invisible, and its RedrivePolicy's maxReceiveCount moves a message to its
// dead-letter queue (without one, a failing message stays until its retention ends). Records
// are built by the queue, so that messageId, receiptHandle, attributes and messageAttributes
// read as ReceiveMessage returns them.

// SQSQueues are the SQS API's queues (sqs.Service).
type SQSQueues interface {
	// Source returns the queue arn names; an error when there is none (the SQS API's
	// QueueDoesNotExist).
	Source(ctx context.Context, arn string) (*SQSQueue, error)
}

// SQSQueue is an SQS API queue as a mapping reads it.
type SQSQueue struct {
	Stream   string
	Consumer jetstream.Consumer // the queue's shared consumer
	// Settings reads the queue's VisibilityTimeout and its RedrivePolicy's maxReceiveCount (0:
	// no dead-letter queue) now: they may change while a mapping runs.
	Settings func(ctx context.Context) (visibility time.Duration, maxReceive int)
	// Record renders a delivered message (received times, throttles not counted) as a record of
	// the SQS event, with its messageId and trace header (AWSTraceHeader).
	Record func(msg jetstream.Msg, received int, eventSourceARN, region string) (id string, rec json.RawMessage, trace string, err error)
	// DeadLetter moves a message received more than maxReceive times to the dead-letter queue.
	DeadLetter func(ctx context.Context, msg jetstream.Msg, received int) error
}

// IsSQS reports whether arn names an SQS API queue.
func IsSQS(arn string) bool { return strings.HasPrefix(arn, "arn:aws:sqs:") }
