package sns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/awsquery"
	"github.com/flint-run/flint/internal/eventfilter"
	"github.com/flint-run/flint/internal/sqs"
)

// maxMessage is the largest message SNS takes (256 KiB, the attributes included).
const maxMessage = 256 << 10

type attributeValue struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

type publishInput struct {
	TopicArn               string                    `json:"TopicArn"`
	TargetArn              string                    `json:"TargetArn"`
	PhoneNumber            string                    `json:"PhoneNumber"`
	Message                *string                   `json:"Message"`
	Subject                *string                   `json:"Subject"`
	MessageStructure       string                    `json:"MessageStructure"`
	MessageAttributes      map[string]attributeValue `json:"MessageAttributes"`
	MessageGroupId         string                    `json:"MessageGroupId"`
	MessageDeduplicationId string                    `json:"MessageDeduplicationId"`
}

type publishOutput struct {
	MessageId      string `json:"MessageId"`
	SequenceNumber string `json:"SequenceNumber,omitempty"`
}

// message is a validated message, ready to fan out.
type message struct {
	id         string
	topic      *topic
	subject    *string
	body       string
	structured map[string]string // MessageStructure json: the message per protocol ("default" too)
	attrs      map[string]attributeValue
	groupID    string
	dedupID    string
	seq        string
	time       time.Time
	// signed caches the signature (version, signature, certificate URL) by the topic's
	// SignatureVersion and the body: fanOut delivers one message to its subscriptions in turn.
	signed map[string][3]string
}

var (
	attrNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_\-.]{1,256}$`) })
	fifoIDRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[\\x21-\\x7e]{1,128}$") })
)

// prepare validates one message for topic t; nothing is written.
func prepare(t *topic, e *publishInput) (*message, error) {
	if e.Message == nil || *e.Message == "" {
		return nil, errInvalid("Empty message")
	}
	m := &message{topic: t, subject: e.Subject, body: *e.Message, attrs: e.MessageAttributes, time: time.Now().UTC()}
	if e.Subject != nil {
		sub := *e.Subject
		if sub == "" || len(sub) > 100 || strings.ContainsAny(sub, "\n\r") || !printableASCII(sub) {
			return nil, errInvalid("Subject")
		}
	}
	size := len(m.body)
	for name, a := range e.MessageAttributes {
		if !attrNameRE().MatchString(name) || strings.HasPrefix(strings.ToLower(name), "aws.") || strings.HasPrefix(strings.ToLower(name), "amazon.") {
			return nil, errInvalidValue("The message attribute name '%s' is invalid.", name)
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		if base != "String" && base != "Number" && base != "Binary" {
			return nil, errInvalidValue("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
		}
		switch {
		case base == "Binary" && len(a.BinaryValue) == 0, base != "Binary" && (a.StringValue == nil || *a.StringValue == ""):
			return nil, errInvalidValue("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
		}
		if a.DataType == "String.Array" {
			var l []any
			if json.Unmarshal([]byte(*a.StringValue), &l) != nil {
				return nil, errInvalidValue("The message attribute '%s' with type 'String.Array' has an invalid value: not a JSON array.", name)
			}
		}
		size += len(name) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			size += len(*a.StringValue)
		}
	}
	if size > maxMessage {
		return nil, errInvalid("Message too long")
	}
	if e.MessageStructure != "" {
		if e.MessageStructure != "json" {
			return nil, errInvalid("Invalid value for MessageStructure")
		}
		if err := json.Unmarshal([]byte(m.body), &m.structured); err != nil {
			return nil, errInvalid("Message Structure - JSON message body failed to parse")
		}
		if _, ok := m.structured["default"]; !ok {
			return nil, errInvalid("Message Structure - No default entry in JSON message body")
		}
	}
	if t.fifo() {
		if e.MessageGroupId == "" {
			return nil, errInvalid("The MessageGroupId parameter is required for FIFO topics")
		}
		if !fifoIDRE().MatchString(e.MessageGroupId) {
			return nil, errInvalid("MessageGroupId")
		}
		m.groupID, m.dedupID = e.MessageGroupId, e.MessageDeduplicationId
		if m.dedupID == "" {
			if t.Attributes["ContentBasedDeduplication"] != "true" {
				return nil, errInvalid("The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			sum := sha256.Sum256([]byte(m.body))
			m.dedupID = hex.EncodeToString(sum[:])
		} else if !fifoIDRE().MatchString(m.dedupID) {
			return nil, errInvalid("MessageDeduplicationId")
		}
		// The same deduplication id is the same message: its id, and each delivery's, repeat.
		m.id = uuid.NewSHA1(uuid.NameSpaceURL, []byte(t.Arn+"|"+m.dedupID)).String()
		m.seq = fmt.Sprintf("%020d", m.time.UnixNano())
	} else {
		if e.MessageGroupId != "" && len(e.MessageGroupId) > 128 {
			return nil, errInvalid("MessageGroupId")
		}
		if e.MessageDeduplicationId != "" {
			return nil, errInvalid("The request includes MessageDeduplicationId parameter that is not valid for this topic type")
		}
		m.id = uuid.NewString()
	}
	return m, nil
}

func printableASCII(s string) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func (s *Service) publish(ctx context.Context, c *call, in *publishInput) (any, error) {
	arn, param := in.TopicArn, "TopicArn"
	if arn == "" {
		arn, param = in.TargetArn, "TargetArn"
	}
	if arn == "" {
		if in.PhoneNumber != "" {
			return nil, errInvalid("PhoneNumber Reason: SMS is not supported by Flint")
		}
		return nil, errInvalid("TopicArn or TargetArn Reason: no value for required parameter")
	}
	t, _, err := s.topicByARN(ctx, arn, param)
	if err != nil {
		return nil, err
	}
	m, err := prepare(t, in)
	if err != nil {
		return nil, err
	}
	if err := s.fanOut(ctx, c, m); err != nil {
		return nil, err
	}
	return &publishOutput{MessageId: m.id, SequenceNumber: m.seq}, nil
}

type batchEntry struct {
	Id string `json:"Id"`
	publishInput
}

type publishBatchInput struct {
	TopicArn                   string       `json:"TopicArn"`
	PublishBatchRequestEntries []batchEntry `json:"PublishBatchRequestEntries"`
}

type batchResult struct {
	Id             string `json:"Id"`
	MessageId      string `json:"MessageId"`
	SequenceNumber string `json:"SequenceNumber,omitempty"`
}

type batchError struct {
	Id          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message,omitempty"`
	SenderFault bool   `json:"SenderFault"`
}

type publishBatchOutput struct {
	Successful []batchResult `json:"Successful"`
	Failed     []batchError  `json:"Failed"`
}

var batchIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`) })

func (s *Service) publishBatch(ctx context.Context, c *call, in *publishBatchInput) (any, error) {
	entries := in.PublishBatchRequestEntries
	switch {
	case len(entries) == 0:
		return nil, errEmptyBatch()
	case len(entries) > 10:
		return nil, errTooManyEntries()
	}
	seen := map[string]bool{}
	size := 0
	for _, e := range entries {
		if !batchIDRE().MatchString(e.Id) {
			return nil, errInvalidBatchID()
		}
		if seen[e.Id] {
			return nil, errIDsNotDistinct()
		}
		seen[e.Id] = true
		if e.Message != nil {
			size += len(*e.Message)
		}
	}
	if size > maxMessage {
		return nil, newError("BatchRequestTooLong", 400, "The length of all the messages put together is more than the limit.")
	}
	t, _, err := s.topicByARN(ctx, in.TopicArn, "TopicArn")
	if err != nil {
		return nil, err
	}
	out := &publishBatchOutput{Successful: []batchResult{}, Failed: []batchError{}}
	for _, e := range entries {
		m, err := prepare(t, &e.publishInput)
		if err == nil {
			err = s.fanOut(ctx, c, m)
		}
		if err != nil {
			ae := asError(err)
			if !ae.Sender() {
				s.log.Error("sns batch entry failed", "topic", t.Arn, "id", e.Id, "err", err)
			}
			out.Failed = append(out.Failed, batchError{Id: e.Id, Code: ae.Code, Message: ae.Message, SenderFault: ae.Sender()})
			continue
		}
		out.Successful = append(out.Successful, batchResult{Id: e.Id, MessageId: m.id, SequenceNumber: m.seq})
	}
	return out, nil
}

// fanOut stores a delivery for every confirmed subscription of m's topic whose filter policy
// matches; each is durable when fanOut returns.
func (s *Service) fanOut(ctx context.Context, c *call, m *message) error {
	subs, err := s.subscriptions(ctx, m.topic.Name)
	if err != nil {
		return err
	}
	if err := s.shareCert(ctx); err != nil {
		return err
	}
	for _, sub := range subs {
		if sub.Pending {
			continue
		}
		body := m.body
		if m.structured != nil {
			body = m.structured["default"]
			if v, ok := m.structured[sub.Protocol]; ok {
				body = v
			}
		}
		if !matches(sub, body, m.attrs) {
			continue
		}
		if err := s.deliver(ctx, c, m, sub, body); err != nil {
			return fmt.Errorf("deliver to %s: %w", sub.Arn, err)
		}
	}
	return nil
}

// matches applies a subscription's filter policy: to the message attributes, or to the body
// (FilterPolicyScope MessageBody, which a body that is not a JSON object never matches).
func matches(sub *subscription, body string, attrs map[string]attributeValue) bool {
	policy := sub.Attributes["FilterPolicy"]
	if policy == "" {
		return true
	}
	p, err := compilePolicy(policy)
	if err != nil {
		return false // validated when set; a stored policy that no longer compiles matches nothing
	}
	if sub.Attributes["FilterPolicyScope"] == "MessageBody" {
		doc, err := eventfilter.Decode([]byte(body))
		if err != nil {
			return false
		}
		if _, ok := doc.(map[string]any); !ok {
			return false
		}
		return p.Match(doc)
	}
	return p.Match(attributeDocument(attrs))
}

// attributeDocument is the message attributes as a filter policy sees them: strings, numbers,
// and String.Array's elements; Binary attributes are not matched.
func attributeDocument(attrs map[string]attributeValue) map[string]any {
	doc := map[string]any{}
	for name, a := range attrs {
		if a.StringValue == nil {
			continue
		}
		switch base, _, _ := strings.Cut(a.DataType, "."); {
		case a.DataType == "String.Array":
			if v, err := eventfilter.Decode([]byte(*a.StringValue)); err == nil {
				doc[name] = v
			}
		case base == "Number":
			doc[name] = json.Number(strings.TrimSpace(*a.StringValue))
		case base == "String":
			doc[name] = *a.StringValue
		}
	}
	return doc
}

func (s *Service) deliver(ctx context.Context, c *call, m *message, sub *subscription, body string) error {
	switch sub.Protocol {
	case "lambda":
		e, err := s.envelope(c, m, sub, body)
		if err != nil {
			return err
		}
		payload, err := encode(lambdaEvent(e, sub.Arn))
		if err != nil {
			return err
		}
		p := strings.Split(sub.Endpoint, ":")
		fn, qualifier := p[6], ""
		if len(p) == 8 && p[7] != "$LATEST" {
			qualifier = p[7]
		}
		id := uuid.NewString()
		if m.dedupID != "" {
			id = uuid.NewSHA1(uuid.NameSpaceURL, []byte(sub.Arn+"|"+m.dedupID)).String()
		}
		return s.cfg.Async.Enqueue(ctx, asyncq.Event{RequestID: id, Function: fn, Qualifier: qualifier, Payload: payload,
			EnqueuedAt: time.Now(), FunctionArn: strings.Join(p[:7], ":")})
	case "sqs":
		var (
			text  string
			attrs map[string]sqs.AttributeValue
		)
		if sub.Attributes["RawMessageDelivery"] == "true" {
			text = body
			if len(m.attrs) > 0 {
				attrs = map[string]sqs.AttributeValue{}
				for k, a := range m.attrs {
					attrs[k] = sqs.AttributeValue{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
				}
			}
		} else {
			b, err := s.encodedEnvelope(c, m, sub, body)
			if err != nil {
				return err
			}
			text = string(b)
		}
		_, err := s.cfg.SQS.SendByARN(ctx, sub.Endpoint, text, attrs, m.groupID, m.dedupID)
		if e := awsquery.As(err); e != nil && e.Sender() {
			// The queue is gone or refuses the message: retrying will not help, so it goes to
			// the subscription's dead-letter queue, or is dropped, as SNS does.
			s.log.Warn("sns delivery to queue refused", "subscription", sub.Arn, "queue", sub.Endpoint, "code", e.Code, "message", e.Message)
			env, err := s.encodedEnvelope(c, m, sub, body)
			if err != nil {
				return err
			}
			return s.deadLetter(ctx, sub.Attributes["RedrivePolicy"], sub.Arn, string(env), m.groupID, m.dedupID)
		}
		return err
	default: // http, https
		headers := map[string]string{"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": m.id,
			"x-amz-sns-topic-arn": m.topic.Arn, "x-amz-sns-subscription-arn": sub.Arn}
		var b []byte
		var err error
		if sub.Attributes["RawMessageDelivery"] == "true" {
			b = []byte(body)
			headers["x-amz-sns-rawdelivery"] = "true"
		} else if b, err = s.encodedEnvelope(c, m, sub, body); err != nil {
			return err
		}
		d := &httpDelivery{URL: sub.Endpoint, Headers: headers, Body: string(b), Subscription: sub.Arn, RedrivePolicy: sub.Attributes["RedrivePolicy"]}
		if sub.Attributes["RawMessageDelivery"] == "true" {
			// The dead-letter queue gets the envelope, whichever form the endpoint gets.
			env, err := s.encodedEnvelope(c, m, sub, body)
			if err != nil {
				return err
			}
			d.Envelope = string(env)
		}
		return s.enqueueHTTP(ctx, d)
	}
}

// envelope is the JSON document SNS delivers to http(s) and (not raw) sqs subscriptions.
type envelope struct {
	Type              string                   `json:"Type"`
	MessageId         string                   `json:"MessageId"`
	Token             string                   `json:"Token,omitempty"`
	TopicArn          string                   `json:"TopicArn"`
	Subject           *string                  `json:"Subject,omitempty"`
	Message           string                   `json:"Message"`
	SubscribeURL      string                   `json:"SubscribeURL,omitempty"`
	Timestamp         string                   `json:"Timestamp"`
	SignatureVersion  string                   `json:"SignatureVersion"`
	Signature         string                   `json:"Signature"`
	SigningCertURL    string                   `json:"SigningCertURL"`
	UnsubscribeURL    string                   `json:"UnsubscribeURL,omitempty"`
	MessageAttributes map[string]envelopeValue `json:"MessageAttributes,omitempty"`
	SequenceNumber    string                   `json:"SequenceNumber,omitempty"`
}

type envelopeValue struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

const timeFormat = "2006-01-02T15:04:05.000Z"

// envelope builds m's notification for sub, signed (signing.go) with the topic's
// SignatureVersion. The signed members are the same for every subscription that gets the same
// body, so the signature is made once per body and version.
func (s *Service) envelope(c *call, m *message, sub *subscription, body string) (*envelope, error) {
	e := &envelope{Type: "Notification", MessageId: m.id, TopicArn: m.topic.Arn, Subject: m.subject, Message: body,
		Timestamp: m.time.Format(timeFormat), SignatureVersion: "1", SequenceNumber: m.seq,
		UnsubscribeURL: c.base + "/?Action=Unsubscribe&SubscriptionArn=" + url.QueryEscape(sub.Arn)}
	if s.signer != nil {
		key := m.topic.Attributes["SignatureVersion"] + "\x00" + body
		if sig, ok := m.signed[key]; ok {
			e.SignatureVersion, e.Signature, e.SigningCertURL = sig[0], sig[1], sig[2]
		} else {
			if err := s.signer.sign(e, m.topic.Attributes["SignatureVersion"], c.base); err != nil {
				return nil, err
			}
			if m.signed == nil {
				m.signed = map[string][3]string{}
			}
			m.signed[key] = [3]string{e.SignatureVersion, e.Signature, e.SigningCertURL}
		}
	}
	if len(m.attrs) > 0 {
		e.MessageAttributes = map[string]envelopeValue{}
		for k, a := range m.attrs {
			v := envelopeValue{Type: a.DataType}
			if a.StringValue != nil {
				v.Value = *a.StringValue
			} else {
				v.Value = base64.StdEncoding.EncodeToString(a.BinaryValue)
			}
			e.MessageAttributes[k] = v
		}
	}
	return e, nil
}

// LambdaEvent is Lambda's SNS event: one record per notification.
type LambdaEvent struct {
	Records []LambdaRecord `json:"Records"`
}

// LambdaRecord is one record of a LambdaEvent.
type LambdaRecord struct {
	EventSource          string    `json:"EventSource"`
	EventVersion         string    `json:"EventVersion"`
	EventSubscriptionArn string    `json:"EventSubscriptionArn"`
	Sns                  LambdaSNS `json:"Sns"`
}

// LambdaSNS is the notification as a Lambda record carries it (its URL members spelled Url,
// and Subject null when the message has none, unlike the http/sqs envelope).
type LambdaSNS struct {
	Type              string                   `json:"Type"`
	MessageId         string                   `json:"MessageId"`
	TopicArn          string                   `json:"TopicArn"`
	Subject           *string                  `json:"Subject"`
	Message           string                   `json:"Message"`
	Timestamp         string                   `json:"Timestamp"`
	SignatureVersion  string                   `json:"SignatureVersion"`
	Signature         string                   `json:"Signature"`
	SigningCertUrl    string                   `json:"SigningCertUrl"`
	UnsubscribeUrl    string                   `json:"UnsubscribeUrl"`
	MessageAttributes map[string]envelopeValue `json:"MessageAttributes"`
}

func lambdaEvent(e *envelope, subArn string) *LambdaEvent {
	attrs := e.MessageAttributes
	if attrs == nil {
		attrs = map[string]envelopeValue{}
	}
	return &LambdaEvent{Records: []LambdaRecord{{EventSource: "aws:sns", EventVersion: "1.0", EventSubscriptionArn: subArn,
		Sns: LambdaSNS{Type: e.Type, MessageId: e.MessageId, TopicArn: e.TopicArn, Subject: e.Subject, Message: e.Message,
			Timestamp: e.Timestamp, SignatureVersion: e.SignatureVersion, Signature: e.Signature, SigningCertUrl: e.SigningCertURL,
			UnsubscribeUrl: e.UnsubscribeURL, MessageAttributes: attrs}}}}
}

// encodedEnvelope is envelope's JSON.
func (s *Service) encodedEnvelope(c *call, m *message, sub *subscription, body string) ([]byte, error) {
	e, err := s.envelope(c, m, sub, body)
	if err != nil {
		return nil, err
	}
	return encode(e)
}

// encode is JSON as SNS writes it: "<", ">" and "&" as themselves (a message's text and the
// UnsubscribeURL's query read the same in the body as they were published).
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// deadLetter sends an undeliverable notification (its envelope) to the queue a subscription's
// RedrivePolicy names; without one, or when that queue refuses it too, it is dropped with a
// log line. Only a failure to store (not a refusal) is an error.
func (s *Service) deadLetter(ctx context.Context, policy, subArn, envelope, groupID, dedupID string) error {
	dlq, _ := deadLetterARN(policy)
	if dlq == "" {
		s.log.Warn("sns notification dropped: undeliverable, no dead-letter queue", "subscription", subArn)
		return nil
	}
	_, err := s.cfg.SQS.SendByARN(ctx, dlq, envelope, nil, groupID, dedupID)
	if e := awsquery.As(err); e != nil && e.Sender() {
		s.log.Warn("sns notification dropped: its dead-letter queue refused it", "subscription", subArn, "queue", dlq, "code", e.Code)
		return nil
	}
	if err == nil {
		s.log.Info("sns notification moved to the subscription's dead-letter queue", "subscription", subArn, "queue", dlq)
	}
	return err
}
