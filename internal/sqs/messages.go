package sqs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type sendMessageInput struct {
	QueueUrl                string                    `json:"QueueUrl"`
	MessageBody             *string                   `json:"MessageBody"`
	DelaySeconds            num                       `json:"DelaySeconds"`
	MessageAttributes       map[string]AttributeValue `json:"MessageAttributes"`
	MessageSystemAttributes map[string]AttributeValue `json:"MessageSystemAttributes"`
	MessageDeduplicationId  string                    `json:"MessageDeduplicationId"`
	MessageGroupId          string                    `json:"MessageGroupId"`
}

type sendMessageOutput struct {
	MD5OfMessageBody             string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes       string `json:"MD5OfMessageAttributes,omitempty"`
	MD5OfMessageSystemAttributes string `json:"MD5OfMessageSystemAttributes,omitempty"`
	MessageId                    string `json:"MessageId"`
	SequenceNumber               string `json:"SequenceNumber,omitempty"`
}

// maxAttributesHeader bounds the attributes kept in a header (JetStream: 64 KiB of headers in
// all, the other headers included).
const maxAttributesHeader = 48 << 10

var fifoIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[\\x21-\\x7e]{1,128}$") })

// prepared is a validated message ready to publish.
type prepared struct {
	msg   *nats.Msg
	opts  []jetstream.PublishOpt
	out   sendMessageOutput
	delay int
}

// prepare validates one message for queue q and builds what to publish; nothing is written.
func (s *Service) prepare(q *queue, in *sendMessageInput) (*prepared, error) {
	if in.MessageBody == nil {
		return nil, errMissing("MessageBody")
	}
	body := *in.MessageBody
	if body == "" {
		return nil, errInvalidParameter("The request must contain the parameter MessageBody.")
	}
	if !validChars(body) {
		return nil, newError("com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents",
			"Invalid binary character was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	size, err := checkAttributes(in.MessageAttributes)
	if err != nil {
		return nil, err
	}
	limit := atoi(q.Attributes["MaximumMessageSize"])
	if limit <= 0 {
		limit = maxMessage
	}
	if len(body)+size > limit {
		return nil, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit)
	}
	trace := ""
	for k, v := range in.MessageSystemAttributes {
		if k != "AWSTraceHeader" || v.DataType != "String" || v.StringValue == nil {
			return nil, errInvalidParameter("Message system attribute name '%s' is invalid.", k)
		}
		// It rides in a header: printable ASCII only, so it cannot end the header.
		if !fifoIDRE().MatchString(strings.ReplaceAll(*v.StringValue, " ", "!")) {
			return nil, errInvalidParameter("Value %q for parameter AWSTraceHeader is invalid.", *v.StringValue)
		}
		trace = *v.StringValue
	}
	delay := atoi(q.Attributes["DelaySeconds"])
	if in.DelaySeconds.set {
		if q.fifo() {
			return nil, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", in.DelaySeconds.v)
		}
		if in.DelaySeconds.v < 0 || in.DelaySeconds.v > 900 {
			return nil, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.", in.DelaySeconds.v)
		}
		delay = in.DelaySeconds.v
	}
	p := &prepared{delay: delay}
	h := nats.Header{}
	id := uuid.NewString()
	if q.fifo() {
		if in.MessageGroupId == "" {
			return nil, errMissing("MessageGroupId")
		}
		if !fifoIDRE().MatchString(in.MessageGroupId) {
			return nil, errInvalidParameter("Value %s for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.", in.MessageGroupId)
		}
		dedup := in.MessageDeduplicationId
		if dedup == "" {
			if q.Attributes["ContentBasedDeduplication"] != "true" {
				return nil, errInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			sum := sha256.Sum256([]byte(body))
			dedup = hex.EncodeToString(sum[:])
		} else if !fifoIDRE().MatchString(dedup) {
			return nil, errInvalidParameter("Value %s for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.", dedup)
		}
		key := dedup
		if q.Attributes["DeduplicationScope"] == "messageGroup" {
			key = in.MessageGroupId + "\x00" + dedup
		}
		// A duplicate gets the first one's id: the id derives from what deduplicates it.
		id = uuid.NewSHA1(idSpace, []byte(q.Name+"\x00"+key)).String()
		p.opts = append(p.opts, jetstream.WithMsgID(id))
		h.Set(hdrGroup, in.MessageGroupId)
		h.Set(hdrDedup, dedup)
	} else if in.MessageDeduplicationId != "" {
		return nil, errInvalidParameter("Value %s for parameter MessageDeduplicationId is invalid. Reason: The request include parameter that is not valid for this queue type.", in.MessageDeduplicationId)
	} else if in.MessageGroupId != "" {
		h.Set(hdrGroup, in.MessageGroupId) // fair queues: accepted and returned
	}
	h.Set(hdrID, id)
	h.Set(hdrSent, strconv.FormatInt(time.Now().UnixMilli(), 10))
	data := []byte(body)
	if len(in.MessageAttributes) > 0 {
		b, err := json.Marshal(in.MessageAttributes)
		if err != nil {
			return nil, err
		}
		if len(b) <= maxAttributesHeader {
			h.Set(hdrAttributes, string(b))
		} else {
			h.Set(hdrAttributesLen, strconv.Itoa(len(b)))
			data = append(b, body...)
		}
	}
	if trace != "" {
		h.Set(hdrTrace, trace)
	}
	subject := subjectOf(q.stream())
	if delay > 0 {
		// The message waits in the stream as a schedule; the server stores it on the queue's
		// subject at its time. @at takes whole seconds, so round up: never early.
		at := time.Now().Add(time.Duration(delay) * time.Second).Truncate(time.Second).Add(time.Second)
		p.opts = append(p.opts, jetstream.WithScheduleAt(at), jetstream.WithScheduleTarget(subject))
		subject = delaySubject + q.stream() + "." + id
	}
	p.msg = &nats.Msg{Subject: subject, Header: h, Data: data}
	p.out = sendMessageOutput{MD5OfMessageBody: bodyMD5(body), MD5OfMessageAttributes: AttributesMD5(in.MessageAttributes),
		MD5OfMessageSystemAttributes: AttributesMD5(in.MessageSystemAttributes), MessageId: id}
	return p, nil
}

// publish stores a prepared message; it is durable when publish returns.
func (s *Service) publish(ctx context.Context, q *queue, p *prepared) (*sendMessageOutput, error) {
	ack, err := s.js.PublishMsg(ctx, p.msg, p.opts...)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		// The stream went away under the queue (deleted from outside): make it again, once.
		if _, err = s.ensure(ctx, q); err == nil {
			ack, err = s.js.PublishMsg(ctx, p.msg, p.opts...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("send to queue %s: %w", q.Name, err)
	}
	out := p.out
	if q.fifo() {
		out.SequenceNumber = fmt.Sprintf("%020d", ack.Sequence)
	}
	return &out, nil
}

func (s *Service) sendMessage(ctx context.Context, _ *call, in *sendMessageInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	p, err := s.prepare(q, in)
	if err != nil {
		return nil, err
	}
	return s.publish(ctx, q, p)
}

type sendBatchEntry struct {
	Id string `json:"Id"`
	sendMessageInput
}

type sendMessageBatchInput struct {
	QueueUrl string           `json:"QueueUrl"`
	Entries  []sendBatchEntry `json:"Entries"`
}

type sendBatchResult struct {
	Id string `json:"Id"`
	sendMessageOutput
}

type batchError struct {
	Id          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message,omitempty"`
	SenderFault bool   `json:"SenderFault"`
}

type sendMessageBatchOutput struct {
	Successful []sendBatchResult `json:"Successful"`
	Failed     []batchError      `json:"Failed"`
}

var batchIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`) })

// checkBatch applies the rules every batch request shares.
func checkBatch(entry string, ids []string) error {
	if len(ids) == 0 {
		return errEmptyBatch(entry)
	}
	if len(ids) > 10 {
		return errTooManyEntries(len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDRE().MatchString(id) {
			return errInvalidBatchID()
		}
		if seen[id] {
			return errIDsNotDistinct(id)
		}
		seen[id] = true
	}
	return nil
}

func entryError(id string, err error) batchError {
	e := asError(err)
	return batchError{Id: id, Code: e.Code, Message: e.Message, SenderFault: e.Sender()}
}

func (s *Service) sendMessageBatch(ctx context.Context, _ *call, in *sendMessageBatchInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		ids[i] = e.Id
		if e.MessageBody != nil {
			total += len(*e.MessageBody)
		}
		for n, v := range e.MessageAttributes {
			total += len(n) + len(v.DataType) + len(v.BinaryValue)
			if v.StringValue != nil {
				total += len(*v.StringValue)
			}
		}
	}
	if err := checkBatch("SendMessageBatchRequestEntry", ids); err != nil {
		return nil, err
	}
	if total > maxMessage {
		return nil, errBatchTooLong(total)
	}
	out := &sendMessageBatchOutput{Successful: []sendBatchResult{}, Failed: []batchError{}}
	for _, e := range in.Entries {
		e.QueueUrl = in.QueueUrl
		p, err := s.prepare(q, &e.sendMessageInput)
		if err != nil {
			out.Failed = append(out.Failed, entryError(e.Id, err))
			continue
		}
		res, err := s.publish(ctx, q, p)
		if err != nil {
			s.log.Warn("send message batch entry", "queue", q.Name, "err", err)
			out.Failed = append(out.Failed, entryError(e.Id, err))
			continue
		}
		out.Successful = append(out.Successful, sendBatchResult{Id: e.Id, sendMessageOutput: *res})
	}
	return out, nil
}

type receiveMessageInput struct {
	QueueUrl                    string   `json:"QueueUrl"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	MaxNumberOfMessages         num      `json:"MaxNumberOfMessages"`
	VisibilityTimeout           num      `json:"VisibilityTimeout"`
	WaitTimeSeconds             num      `json:"WaitTimeSeconds"`
	ReceiveRequestAttemptId     string   `json:"ReceiveRequestAttemptId"`
}

// Message is a received message as the API returns it.
type Message struct {
	MessageId              string                    `json:"MessageId"`
	ReceiptHandle          string                    `json:"ReceiptHandle"`
	MD5OfBody              string                    `json:"MD5OfBody"`
	Body                   string                    `json:"Body"`
	Attributes             map[string]string         `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                    `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]AttributeValue `json:"MessageAttributes,omitempty"`
}

type receiveMessageOutput struct {
	Messages []Message `json:"Messages,omitempty"`
}

var systemAttributes = []string{"ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp",
	"SenderId", "MessageDeduplicationId", "MessageGroupId", "SequenceNumber", "AWSTraceHeader", "DeadLetterQueueSourceArn"}

func (s *Service) receiveMessage(ctx context.Context, _ *call, in *receiveMessageInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	n := 1
	if in.MaxNumberOfMessages.set {
		if n = in.MaxNumberOfMessages.v; n < 1 || n > 10 {
			return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n)
		}
	}
	wait := atoi(q.Attributes["ReceiveMessageWaitTimeSeconds"])
	if in.WaitTimeSeconds.set {
		if wait = in.WaitTimeSeconds.v; wait < 0 || wait > 20 {
			return nil, errInvalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", wait)
		}
	}
	if in.VisibilityTimeout.set && (in.VisibilityTimeout.v < 0 || in.VisibilityTimeout.v > 43200) {
		return nil, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", in.VisibilityTimeout.v)
	}
	sys := map[string]bool{}
	for _, a := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		switch {
		case a == "All":
			for _, k := range systemAttributes {
				sys[k] = true
			}
		case contains(systemAttributes, a):
			sys[a] = true
		default:
			return nil, errInvalidAttributeName(a)
		}
	}
	c, err := s.consumer(ctx, q)
	if err != nil {
		return nil, err
	}
	msgs, err := fetch(ctx, c, n, time.Duration(wait)*time.Second)
	if err != nil {
		return nil, fmt.Errorf("receive from queue %s: %w", q.Name, err)
	}
	if ctx.Err() != nil { // the client is gone: the messages go back at once
		for _, m := range msgs {
			handBack(m)
		}
		return nil, ctx.Err()
	}
	out := &receiveMessageOutput{}
	dlq, maxReceive := q.redrive()
	for _, msg := range msgs {
		m, err := decode(msg)
		if err != nil {
			s.log.Warn("undecodable message", "queue", q.Name, "err", err)
			handBack(msg)
			continue
		}
		if dlq != "" && m.Received > maxReceive {
			if err := s.deadLetter(ctx, q, dlq, msg, m, m.Received-1); err != nil {
				s.log.Warn("move to dead-letter queue", "queue", q.Name, "err", err)
			}
			continue
		}
		// The consumer's AckWait is the queue's VisibilityTimeout (at least a second: JetStream's
		// floor); another one, this receive's or a queue's 0, is a NAK with that delay.
		vis := q.visibility()
		if in.VisibilityTimeout.set {
			vis = time.Duration(in.VisibilityTimeout.v) * time.Second
		}
		if vis != max(q.visibility(), time.Second) {
			_ = msg.NakWithDelay(max(vis, time.Millisecond))
		}
		out.Messages = append(out.Messages, s.message(msg, m, sys, in.MessageAttributeNames))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fetch takes up to n messages from c, waiting up to wait for the first one, and returns as soon
// as there is one (SQS's long polling), not when n have come.
func fetch(ctx context.Context, c jetstream.Consumer, n int, wait time.Duration) ([]jetstream.Msg, error) {
	collect := func(b jetstream.MessageBatch, err error, out []jetstream.Msg) ([]jetstream.Msg, error) {
		if err != nil {
			return out, err
		}
		for msg := range b.Messages() {
			out = append(out, msg)
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
		return out, nil
	}
	// A pull beyond the consumer's MaxAckPending (1 on a FIFO queue) is not answered at once,
	// even a no-wait one: it waits for acks that cannot come while it is outstanding.
	if mp := c.CachedInfo().Config.MaxAckPending; mp > 0 {
		n = min(n, mp)
	}
	if wait <= 0 {
		b, err := c.FetchNoWait(n)
		return collect(b, err, nil)
	}
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	var out []jetstream.Msg
	var err error
	// A long poll ends early when the client goes away; Fetch itself takes no context, so wait
	// in slices of at most a few seconds.
	for deadline := time.Now().Add(wait); len(out) == 0 && err == nil && ctx.Err() == nil; {
		left := time.Until(deadline)
		if left < 100*time.Millisecond {
			break
		}
		b, ferr := c.Fetch(1, jetstream.FetchMaxWait(min(left, 5*time.Second)))
		out, err = collect(b, ferr, out)
	}
	if err != nil || len(out) == 0 || n == 1 {
		return out, err
	}
	b, err := c.FetchNoWait(n - 1)
	return collect(b, err, out)
}

// handBack makes a message visible again at once (see internal/esm's handBack: a delayed NAK
// survives a restart, a plain one does not).
func handBack(msg jetstream.Msg) { _ = msg.NakWithDelay(time.Millisecond) }

// message renders a received message with the system attributes in sys and the message
// attributes names select ("All", ".*", "prefix.*" or names).
func (s *Service) message(msg jetstream.Msg, m *stored, sys map[string]bool, names []string) Message {
	out := Message{MessageId: m.ID, ReceiptHandle: base64.RawURLEncoding.EncodeToString([]byte(msg.Reply())),
		Body: string(m.Body), MD5OfBody: bodyMD5(string(m.Body))}
	attrs := map[string]string{
		"ApproximateReceiveCount":          strconv.Itoa(m.Received),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"SentTimestamp":                    strconv.FormatInt(m.Sent.UnixMilli(), 10),
		"SenderId":                         s.account,
	}
	if m.Group != "" {
		attrs["MessageGroupId"] = m.Group
	}
	if m.Dedup != "" {
		attrs["MessageDeduplicationId"] = m.Dedup
		attrs["SequenceNumber"] = fmt.Sprintf("%020d", m.Seq)
	}
	if m.Trace != "" {
		attrs["AWSTraceHeader"] = m.Trace
	}
	if m.DLQSource != "" {
		attrs["DeadLetterQueueSourceArn"] = m.DLQSource
	}
	for k, v := range attrs {
		if sys[k] {
			if out.Attributes == nil {
				out.Attributes = map[string]string{}
			}
			out.Attributes[k] = v
		}
	}
	for k, v := range m.Attrs {
		if selected(k, names) {
			if out.MessageAttributes == nil {
				out.MessageAttributes = map[string]AttributeValue{}
			}
			out.MessageAttributes[k] = v
		}
	}
	out.MD5OfMessageAttributes = AttributesMD5(out.MessageAttributes)
	return out
}

func selected(name string, names []string) bool {
	for _, n := range names {
		if n == "All" || n == ".*" || n == name {
			return true
		}
		if p, ok := strings.CutSuffix(n, ".*"); ok && strings.HasPrefix(name, p+".") {
			return true
		}
	}
	return false
}

// deadLetter moves a message received too often to the dead-letter queue dlqARN: published there
// with its id, body and attributes (durable first), then removed from q.
func (s *Service) deadLetter(ctx context.Context, q *queue, dlqARN string, msg jetstream.Msg, m *stored, received int) error {
	dlq, err := s.byARN(ctx, dlqARN)
	if err != nil {
		_ = msg.NakWithDelay(q.visibility())
		return fmt.Errorf("dead-letter queue %s: %w", dlqARN, err)
	}
	out := nats.NewMsg(subjectOf(dlq.stream()))
	out.Data = msg.Data() // as stored: large attributes ride in it (hdrAttributesLen)
	for k, vs := range msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			out.Header[k] = vs
		}
	}
	out.Header.Set(hdrID, m.ID)
	out.Header.Set(hdrSent, strconv.FormatInt(m.Sent.UnixMilli(), 10))
	out.Header.Set(hdrDLQSource, s.ARN(q.Name))
	if _, err := s.js.PublishMsg(ctx, out, jetstream.WithMsgID("dlq/"+q.Name+"/"+m.ID+"/"+strconv.FormatUint(m.Seq, 10))); err != nil {
		_ = msg.NakWithDelay(q.visibility())
		return fmt.Errorf("publish to dead-letter queue %s: %w", dlq.Name, err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		return fmt.Errorf("remove dead-lettered message: %w", err)
	}
	s.log.Debug("moved a message to its dead-letter queue", "queue", q.Name, "dlq", dlq.Name, "message_id", m.ID, "receives", received)
	return nil
}

// ackSubject reads a receipt handle of queue q: the ACK subject of the delivery it was made for.
func ackSubject(q *queue, handle string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(handle)
	if err != nil {
		return "", errReceiptHandle(handle)
	}
	// It goes out as a subject: printable ASCII without spaces or wildcards, and nothing else.
	for _, c := range b {
		if c <= ' ' || c > '~' || c == '*' || c == '>' {
			return "", errReceiptHandle(handle)
		}
	}
	t := strings.Split(string(b), ".")
	var stream, cons string
	switch {
	case len(t) == 9 && t[0] == "$JS" && t[1] == "ACK":
		stream, cons = t[2], t[3]
		for _, n := range t[4:] {
			if _, err := strconv.ParseUint(n, 10, 64); err != nil {
				return "", errReceiptHandle(handle)
			}
		}
	case len(t) >= 11 && t[0] == "$JS" && t[1] == "ACK":
		stream, cons = t[4], t[5]
	default:
		return "", errReceiptHandle(handle)
	}
	if stream != q.stream() || cons != consumerName {
		return "", errReceiptHandle(handle)
	}
	return string(b), nil
}

// settle sends an acknowledgement (body "+ACK", or "-NAK {…}") for a receipt handle and waits
// for the server's confirmation.
func (s *Service) settle(ctx context.Context, q *queue, handle string, body []byte) error {
	subj, err := ackSubject(q, handle)
	if err != nil {
		return err
	}
	// The server does not answer an ACK of a sequence it has not delivered yet; tell such a
	// handle apart at once instead of waiting out the request.
	if seq := ackSequence(subj); seq > 0 {
		c, err := s.consumer(ctx, q)
		if err != nil {
			return err
		}
		if seq > c.CachedInfo().Delivered.Stream {
			info, err := c.Info(ctx)
			if err != nil {
				return fmt.Errorf("queue %s consumer: %w", q.Name, err)
			}
			if seq > info.Delivered.Stream {
				return errReceiptHandle(handle)
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.js.Conn().RequestWithContext(rctx, subj, body); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// The server answers every ACK of a sequence it delivered; silence means it never did.
			return errReceiptHandle(handle)
		}
		return fmt.Errorf("acknowledge on queue %s: %w", q.Name, err)
	}
	return nil
}

// ackSequence is the stream sequence an ACK subject acknowledges (0 if it cannot tell).
func ackSequence(subj string) uint64 {
	t := strings.Split(subj, ".")
	i := 5 // $JS.ACK.stream.consumer.delivered.SSEQ…
	if len(t) >= 11 {
		i = 7
	}
	n, _ := strconv.ParseUint(t[i], 10, 64)
	return n
}

func nakBody(d time.Duration) []byte {
	b, _ := json.Marshal(struct {
		Delay time.Duration `json:"delay"`
	}{max(d, time.Millisecond)})
	return append([]byte("-NAK "), b...)
}

type deleteMessageInput struct {
	QueueUrl      string `json:"QueueUrl"`
	ReceiptHandle string `json:"ReceiptHandle"`
}

func (s *Service) deleteMessage(ctx context.Context, _ *call, in *deleteMessageInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, errMissing("ReceiptHandle")
	}
	return struct{}{}, s.settle(ctx, q, in.ReceiptHandle, []byte("+ACK"))
}

type batchIDEntry struct {
	Id                string `json:"Id"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout num    `json:"VisibilityTimeout"`
}

type batchEntriesInput struct {
	QueueUrl string         `json:"QueueUrl"`
	Entries  []batchIDEntry `json:"Entries"`
}

type batchID struct {
	Id string `json:"Id"`
}

type batchOutput struct {
	Successful []batchID    `json:"Successful"`
	Failed     []batchError `json:"Failed"`
}

// batch runs one per-entry operation over a batch request.
func (s *Service) batch(ctx context.Context, entry string, in *batchEntriesInput, do func(q *queue, e batchIDEntry) error) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(entry, ids); err != nil {
		return nil, err
	}
	out := &batchOutput{Successful: []batchID{}, Failed: []batchError{}}
	for _, e := range in.Entries {
		if err := do(q, e); err != nil {
			if asError(err).Status >= 500 {
				s.log.Warn(entry, "queue", q.Name, "err", err)
			}
			out.Failed = append(out.Failed, entryError(e.Id, err))
			continue
		}
		out.Successful = append(out.Successful, batchID{Id: e.Id})
	}
	return out, nil
}

func (s *Service) deleteMessageBatch(ctx context.Context, _ *call, in *batchEntriesInput) (any, error) {
	return s.batch(ctx, "DeleteMessageBatchRequestEntry", in, func(q *queue, e batchIDEntry) error {
		return s.settle(ctx, q, e.ReceiptHandle, []byte("+ACK"))
	})
}

type changeVisibilityInput struct {
	QueueUrl          string `json:"QueueUrl"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout num    `json:"VisibilityTimeout"`
}

func checkVisibility(n num) error {
	if !n.set {
		return errMissing("VisibilityTimeout")
	}
	if n.v < 0 || n.v > 43200 {
		return errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", n.v)
	}
	return nil
}

func (s *Service) changeMessageVisibility(ctx context.Context, _ *call, in *changeVisibilityInput) (any, error) {
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, errMissing("ReceiptHandle")
	}
	if err := checkVisibility(in.VisibilityTimeout); err != nil {
		return nil, err
	}
	return struct{}{}, s.settle(ctx, q, in.ReceiptHandle, nakBody(time.Duration(in.VisibilityTimeout.v)*time.Second))
}

func (s *Service) changeMessageVisibilityBatch(ctx context.Context, _ *call, in *batchEntriesInput) (any, error) {
	return s.batch(ctx, "ChangeMessageVisibilityBatchRequestEntry", in, func(q *queue, e batchIDEntry) error {
		if err := checkVisibility(e.VisibilityTimeout); err != nil {
			return err
		}
		return s.settle(ctx, q, e.ReceiptHandle, nakBody(time.Duration(e.VisibilityTimeout.v)*time.Second))
	})
}

// SendByARN sends one message to the queue named by its ARN, as SendMessage would, for the
// services that deliver to queues (an SNS sqs subscription); it is durable when SendByARN
// returns. groupID and dedupID apply to FIFO queues. The error is the API's (the queue does
// not exist: AWS.SimpleQueueService.NonExistentQueue; the message is invalid for it).
func (s *Service) SendByARN(ctx context.Context, arn, body string, attrs map[string]AttributeValue, groupID, dedupID string) (messageID string, err error) {
	q, err := s.byARN(ctx, arn)
	if err != nil {
		return "", err
	}
	in := &sendMessageInput{MessageBody: &body, MessageAttributes: attrs}
	if q.fifo() {
		in.MessageGroupId, in.MessageDeduplicationId = groupID, dedupID
	}
	p, err := s.prepare(q, in)
	if err != nil {
		return "", err
	}
	out, err := s.publish(ctx, q, p)
	if err != nil {
		return "", err
	}
	return out.MessageId, nil
}
