package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter queue redrive: StartMessageMoveTask moves the messages a dead-letter queue holds
// when it starts back to the queues they came from (each message's DeadLetterQueueSourceArn)
// or to one destination, through the queue's shared consumer (so it competes with receives),
// at most MaxNumberOfMessagesPerSecond. Tasks are kept in memory by the node that runs them
// (Run owns their goroutines): a restart ends them, and what they moved stays moved.

type moveTask struct {
	handle, source, dest string
	rate                 int
	started              int64 // Unix milliseconds
	toMove               int64
	moved                atomic.Int64
	cancel               chan struct{}

	mu      sync.Mutex
	status  string // RUNNING, CANCELLING, CANCELLED, COMPLETED, FAILED
	failure string
}

func (t *moveTask) state() (string, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status, t.failure
}

func (t *moveTask) finish(status, failure string) {
	t.mu.Lock()
	t.status, t.failure = status, failure
	t.mu.Unlock()
}

// Run runs the message move tasks started on this node until ctx ends, then stops them and
// waits for them.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case t := <-s.starts:
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.move(ctx, t)
			}()
		case <-ctx.Done():
			return nil
		}
	}
}

type startMoveInput struct {
	SourceArn                    string `json:"SourceArn"`
	DestinationArn               string `json:"DestinationArn"`
	MaxNumberOfMessagesPerSecond num    `json:"MaxNumberOfMessagesPerSecond"`
}

type taskHandleOutput struct {
	TaskHandle string `json:"TaskHandle"`
}

func errResourceNotFound(param string) *Error {
	return newError("com.amazonaws.sqs#ResourceNotFoundException", "ResourceNotFoundException",
		"The resource that you specified for the %s parameter doesn't exist.", param)
}

func errUnsupported(format string, args ...any) *Error {
	return newError("com.amazonaws.sqs#UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", format, args...)
}

// sourcesOf lists the queues whose RedrivePolicy names dlq.
func (s *Service) sourcesOf(ctx context.Context, dlq *queue) ([]string, error) {
	keys, err := s.store.Keys(ctx, ">")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		q, _, err := s.load(ctx, k)
		if err != nil {
			continue
		}
		if target, _ := q.redrive(); target == s.ARN(dlq.Name) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (s *Service) startMessageMoveTask(ctx context.Context, _ *call, in *startMoveInput) (any, error) {
	if in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	src, err := s.byARN(ctx, in.SourceArn)
	if isNotExist(err) {
		return nil, errResourceNotFound("SourceArn")
	} else if err != nil {
		return nil, err
	}
	if in.DestinationArn != "" {
		if _, err := s.byARN(ctx, in.DestinationArn); isNotExist(err) {
			return nil, errResourceNotFound("DestinationArn")
		} else if err != nil {
			return nil, err
		}
	}
	rate := 0
	if in.MaxNumberOfMessagesPerSecond.set {
		if rate = in.MaxNumberOfMessagesPerSecond.v; rate < 1 || rate > 500 {
			return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: must be between 1 and 500.", rate)
		}
	}
	sources, err := s.sourcesOf(ctx, src)
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, errInvalidParameter("Source queue must be configured as a Dead Letter Queue.")
	}
	visible, _, _, err := s.depth(ctx, src)
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	t := &moveTask{source: in.SourceArn, dest: in.DestinationArn, rate: rate, started: time.Now().UnixMilli(),
		toMove: int64(visible), cancel: make(chan struct{}), status: "RUNNING"}
	b, _ := json.Marshal(map[string]string{"taskId": id, "sourceArn": in.SourceArn})
	t.handle = base64.StdEncoding.EncodeToString(b)
	s.mu.Lock()
	for _, o := range s.tasks[in.SourceArn] {
		if st, _ := o.state(); st == "RUNNING" || st == "CANCELLING" {
			s.mu.Unlock()
			return nil, errUnsupported("There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
		}
	}
	s.tasks[in.SourceArn] = append([]*moveTask{t}, s.tasks[in.SourceArn]...)
	if len(s.tasks[in.SourceArn]) > 10 { // ListMessageMoveTasks shows the 10 most recent
		s.tasks[in.SourceArn] = s.tasks[in.SourceArn][:10]
	}
	s.mu.Unlock()
	select {
	case s.starts <- t:
	case <-time.After(5 * time.Second):
		t.finish("FAILED", "The task could not be started.")
		return nil, errInternal(errors.New("message move tasks are not running (Service.Run)"))
	case <-ctx.Done():
		t.finish("FAILED", "The task could not be started.")
		return nil, ctx.Err()
	}
	return &taskHandleOutput{TaskHandle: t.handle}, nil
}

// move runs one task.
func (s *Service) move(ctx context.Context, t *moveTask) {
	src, err := s.byARN(ctx, t.source)
	if err != nil {
		t.finish("FAILED", "The source queue does not exist.")
		return
	}
	c, err := s.consumer(ctx, src)
	if err != nil {
		t.finish("FAILED", "The source queue could not be read.")
		s.log.Warn("message move task", "source", t.source, "err", err)
		return
	}
	for t.moved.Load() < t.toMove {
		select {
		case <-t.cancel:
			t.finish("CANCELLED", "")
			return
		case <-ctx.Done():
			t.finish("FAILED", "The server stopped.")
			return
		default:
		}
		n := min(10, t.toMove-t.moved.Load())
		if t.rate > 0 { // hold no more in flight than a second's worth
			n = min(n, int64(t.rate))
		}
		b, err := c.FetchNoWait(int(n))
		if err != nil {
			t.finish("FAILED", "The source queue could not be read.")
			return
		}
		got := 0
		for msg := range b.Messages() {
			got++
			if reason := s.moveOne(ctx, t, msg); reason != "" {
				for m := range b.Messages() { // the rest of the fetch goes back at once
					handBack(m)
				}
				t.finish("FAILED", reason)
				return
			}
			t.moved.Add(1)
			if t.rate > 0 {
				select {
				case <-time.After(time.Second / time.Duration(t.rate)):
				case <-t.cancel:
				case <-ctx.Done():
				}
			}
		}
		if got == 0 {
			break // nothing left to see (received meanwhile, or the count was ahead)
		}
	}
	t.finish("COMPLETED", "")
}

// moveOne moves one message (durable at its destination first), or says why it cannot.
func (s *Service) moveOne(ctx context.Context, t *moveTask, msg jetstream.Msg) string {
	m, err := decode(msg)
	if err != nil {
		handBack(msg)
		return "A message could not be read."
	}
	dest := t.dest
	if dest == "" {
		dest = m.DLQSource
	}
	q, err := s.byARN(ctx, dest)
	if err != nil {
		handBack(msg)
		return "The destination queue " + dest + " does not exist."
	}
	out := nats.NewMsg(subjectOf(q.stream()))
	out.Data = msg.Data() // as stored: large attributes ride in it (hdrAttributesLen)
	for k, vs := range msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") && k != hdrDLQSource {
			out.Header[k] = vs
		}
	}
	out.Header.Set(hdrID, m.ID)
	if _, err := s.js.PublishMsg(ctx, out, jetstream.WithMsgID(fmt.Sprintf("move/%s/%d", t.handle, m.Seq))); err != nil {
		handBack(msg)
		return "The destination queue could not be written."
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		s.log.Warn("message move task: remove a moved message", "source", t.source, "err", err)
	}
	return ""
}

type cancelMoveInput struct {
	TaskHandle string `json:"TaskHandle"`
}

type cancelMoveOutput struct {
	ApproximateNumberOfMessagesMoved int64 `json:"ApproximateNumberOfMessagesMoved"`
}

func (s *Service) cancelMessageMoveTask(_ context.Context, _ *call, in *cancelMoveInput) (any, error) {
	if in.TaskHandle == "" {
		return nil, errMissing("TaskHandle")
	}
	var h struct {
		SourceArn string `json:"sourceArn"`
	}
	b, err := base64.StdEncoding.DecodeString(in.TaskHandle)
	if err != nil || json.Unmarshal(b, &h) != nil {
		return nil, errInvalidParameter("Value %s for parameter TaskHandle is invalid.", in.TaskHandle)
	}
	s.mu.Lock()
	i := slices.IndexFunc(s.tasks[h.SourceArn], func(t *moveTask) bool { return t.handle == in.TaskHandle })
	var t *moveTask
	if i >= 0 {
		t = s.tasks[h.SourceArn][i]
	}
	s.mu.Unlock()
	if t == nil {
		return nil, errResourceNotFound("TaskHandle")
	}
	t.mu.Lock()
	if t.status != "RUNNING" {
		t.mu.Unlock()
		return nil, errUnsupported("Only tasks with status RUNNING can be cancelled.")
	}
	t.status = "CANCELLING"
	close(t.cancel)
	t.mu.Unlock()
	return &cancelMoveOutput{ApproximateNumberOfMessagesMoved: t.moved.Load()}, nil
}

type listMoveInput struct {
	SourceArn  string `json:"SourceArn"`
	MaxResults num    `json:"MaxResults"`
}

type moveTaskEntry struct {
	TaskHandle                        string `json:"TaskHandle,omitempty"`
	Status                            string `json:"Status"`
	SourceArn                         string `json:"SourceArn"`
	DestinationArn                    string `json:"DestinationArn,omitempty"`
	MaxNumberOfMessagesPerSecond      *int   `json:"MaxNumberOfMessagesPerSecond,omitempty"`
	ApproximateNumberOfMessagesMoved  int64  `json:"ApproximateNumberOfMessagesMoved"`
	ApproximateNumberOfMessagesToMove int64  `json:"ApproximateNumberOfMessagesToMove"`
	FailureReason                     string `json:"FailureReason,omitempty"`
	StartedTimestamp                  int64  `json:"StartedTimestamp"`
}

type listMoveOutput struct {
	Results []moveTaskEntry `json:"Results"`
}

func (s *Service) listMessageMoveTasks(ctx context.Context, _ *call, in *listMoveInput) (any, error) {
	if in.SourceArn == "" {
		return nil, errMissing("SourceArn")
	}
	if _, err := s.byARN(ctx, in.SourceArn); isNotExist(err) {
		return nil, errResourceNotFound("SourceArn")
	} else if err != nil {
		return nil, err
	}
	limit := 1
	if in.MaxResults.set {
		if limit = in.MaxResults.v; limit < 1 || limit > 10 {
			return nil, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 10.", limit)
		}
	}
	s.mu.Lock()
	tasks := slices.Clone(s.tasks[in.SourceArn])
	s.mu.Unlock()
	out := &listMoveOutput{Results: []moveTaskEntry{}}
	for _, t := range tasks[:min(limit, len(tasks))] {
		status, failure := t.state()
		e := moveTaskEntry{Status: status, SourceArn: t.source, DestinationArn: t.dest, ApproximateNumberOfMessagesMoved: t.moved.Load(),
			ApproximateNumberOfMessagesToMove: t.toMove, FailureReason: failure, StartedTimestamp: t.started}
		if status == "RUNNING" {
			e.TaskHandle = t.handle
		}
		if t.rate > 0 {
			r := t.rate
			e.MaxNumberOfMessagesPerSecond = &r
		}
		out.Results = append(out.Results, e)
	}
	return out, nil
}

type listDLQSourcesInput struct {
	QueueUrl   string `json:"QueueUrl"`
	NextToken  string `json:"NextToken"`
	MaxResults num    `json:"MaxResults"`
}

type listDLQSourcesOutput struct {
	QueueUrls []string `json:"queueUrls"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (s *Service) listDeadLetterSourceQueues(ctx context.Context, c *call, in *listDLQSourcesInput) (any, error) {
	dlq, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	limit := 1000
	if in.MaxResults.set {
		if limit = in.MaxResults.v; limit < 1 || limit > 1000 {
			return nil, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.", limit)
		}
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return nil, errInvalidParameter("Invalid NextToken value.")
		}
		after = string(b)
	}
	sources, err := s.sourcesOf(ctx, dlq)
	if err != nil {
		return nil, err
	}
	out := &listDLQSourcesOutput{QueueUrls: []string{}}
	for _, k := range sources {
		if after != "" && k <= after {
			continue
		}
		if len(out.QueueUrls) == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(after))
			break
		}
		out.QueueUrls = append(out.QueueUrls, s.queueURL(c.base, k))
		after = k
	}
	return out, nil
}
