package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/awsquery"
)

// call is what an operation knows of its request beyond its input.
type call struct {
	base string // the scheme and Host the client addressed, for queue URLs: "https://host:port"
}

// operation runs one API operation on its input document (JSON, whichever the wire).
type operation func(ctx context.Context, c *call, doc []byte) (any, error)

func handle[In any](f func(ctx context.Context, c *call, in *In) (any, error)) operation {
	return func(ctx context.Context, c *call, doc []byte) (any, error) {
		in := new(In)
		if len(bytes.TrimSpace(doc)) > 0 {
			if err := json.Unmarshal(doc, in); err != nil {
				var e *Error
				if errors.As(err, &e) {
					return nil, e
				}
				return nil, errSerialization("The request body could not be read: %v", err)
			}
		}
		return f(ctx, c, in)
	}
}

func (s *Service) operations() map[string]operation {
	return map[string]operation{
		"CreateQueue":                  handle(s.createQueue),
		"GetQueueUrl":                  handle(s.getQueueURL),
		"GetQueueAttributes":           handle(s.getQueueAttributes),
		"SetQueueAttributes":           handle(s.setQueueAttributes),
		"ListQueues":                   handle(s.listQueues),
		"DeleteQueue":                  handle(s.deleteQueue),
		"PurgeQueue":                   handle(s.purgeQueue),
		"SendMessage":                  handle(s.sendMessage),
		"SendMessageBatch":             handle(s.sendMessageBatch),
		"ReceiveMessage":               handle(s.receiveMessage),
		"DeleteMessage":                handle(s.deleteMessage),
		"DeleteMessageBatch":           handle(s.deleteMessageBatch),
		"ChangeMessageVisibility":      handle(s.changeMessageVisibility),
		"ChangeMessageVisibilityBatch": handle(s.changeMessageVisibilityBatch),
		"TagQueue":                     handle(s.tagQueue),
		"UntagQueue":                   handle(s.untagQueue),
		"ListQueueTags":                handle(s.listQueueTags),
		"ListDeadLetterSourceQueues":   handle(s.listDeadLetterSourceQueues),
		"StartMessageMoveTask":         handle(s.startMessageMoveTask),
		"ListMessageMoveTasks":         handle(s.listMessageMoveTasks),
		"CancelMessageMoveTask":        handle(s.cancelMessageMoveTask),
	}
}

// maxBody bounds a request: a batch of ten 256 KiB messages as a form, with room to spare.
const maxBody = 4 << 20

// ServeHTTP serves one call in whichever protocol it came.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := uuid.NewString()
	w.Header()["X-Amzn-Requestid"] = []string{requestID}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	json10 := r.Header.Get("X-Amz-Target") != ""
	c := &call{base: "http://" + r.Host}
	if r.TLS != nil {
		c.base = "https://" + r.Host
	}
	var op string
	var out any
	switch {
	case err != nil:
		err = errSerialization("Could not read the request body.")
	case len(body) > maxBody:
		err = errInvalidParameter("Request body is larger than %d bytes.", maxBody)
	case json10:
		op = strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
		out, err = s.run(r.Context(), c, op, body)
	default:
		var form url.Values
		if form, err = queryForm(r, body); err == nil {
			op = form.Get("Action")
			// Older clients post to the queue's URL and leave QueueUrl out.
			if form.Get("QueueUrl") == "" && queuePathRE().MatchString(r.URL.Path) {
				form.Set("QueueUrl", r.URL.Path)
			}
			var doc []byte
			if doc, err = formDocument(form); err == nil {
				out, err = s.run(r.Context(), c, op, doc)
			}
		}
	}
	if err != nil {
		e := asError(err)
		s.failed(r, requestID, op, e, err)
		if json10 {
			awsquery.SetQueryError(w, e)
			writeJSONError(w, e)
		} else {
			writeXMLError(w, e, requestID)
		}
		return
	}
	if json10 {
		b, err := json.Marshal(out)
		if err != nil {
			s.log.Error("encode sqs response", "operation", op, "err", err)
			b = []byte("{}")
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(b)
		return
	}
	writeXML(w, op, out, requestID)
}

func (s *Service) run(ctx context.Context, c *call, op string, doc []byte) (any, error) {
	f := s.ops[op]
	if f == nil {
		return nil, errUnknownOperation(op)
	}
	return f(ctx, c, doc)
}

func (s *Service) failed(r *http.Request, requestID, op string, e *Error, err error) {
	if e.Status >= 500 {
		s.log.Error("sqs request failed", "operation", op, "request_id", requestID, "err", err)
	} else if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("sqs request rejected", "operation", op, "request_id", requestID, "code", e.Code, "message", e.Message)
	}
}

func writeJSONError(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Type, e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

func writeXMLError(w http.ResponseWriter, e *Error, requestID string) {
	query.WriteError(w, e, requestID)
}

func queryForm(r *http.Request, body []byte) (url.Values, error) { return awsquery.Form(r, body) }

// query is SQS's dialect of the query protocol: its lists and maps are flattened.
var query = &awsquery.Spec{
	Namespace: xmlns,
	Flat:      true,
	FormMaps: map[string]awsquery.MapSpec{
		"Attribute":              {Member: "Attributes", Key: "Name", Value: "Value"},
		"Tag":                    {Member: "Tags", Key: "Key", Value: "Value"},
		"MessageAttribute":       {Member: "MessageAttributes", Key: "Name", Value: "Value"},
		"MessageSystemAttribute": {Member: "MessageSystemAttributes", Key: "Name", Value: "Value"},
	},
	FormLists: map[string]string{
		"AttributeName":              "AttributeNames",
		"MessageAttributeName":       "MessageAttributeNames",
		"MessageSystemAttributeName": "MessageSystemAttributeNames",
		"TagKey":                     "TagKeys",
		// attribute values' members, whose values are typed (lists of them are flattened too).
		"StringListValue": "StringListValues", "BinaryListValue": "BinaryListValues",
	},
	FormEntries: map[string]string{
		"SendMessageBatchRequestEntry": "Entries", "DeleteMessageBatchRequestEntry": "Entries",
		"ChangeMessageVisibilityBatchRequestEntry": "Entries",
	},
	XMLLists: map[string]string{"QueueUrls": "QueueUrl", "queueUrls": "QueueUrl", "Messages": "Message",
		"Failed": "BatchResultErrorEntry", "Results": "ListMessageMoveTasksResultEntry"},
	XMLMaps: map[string]awsquery.MapSpec{
		"Attributes": {Member: "Attribute", Key: "Name", Value: "Value"}, "Tags": {Member: "Tag", Key: "Key", Value: "Value"},
		"MessageAttributes": {Member: "MessageAttribute", Key: "Name", Value: "Value"},
	},
	ListElem: func(op, member string) string {
		if member == "Successful" {
			return op + "ResultEntry"
		}
		return ""
	},
}

// formDocument turns a query-protocol form into the operation's JSON input document, so one
// decoder (the JSON protocol's) reads both wires.
func formDocument(form url.Values) ([]byte, error) {
	doc, err := query.Document(form)
	if err != nil {
		return nil, err
	}
	// CreateQueue's tags are "tags" in JSON, "Tag.N" in the query protocol.
	if form.Get("Action") == "CreateQueue" {
		if t, ok := doc["Tags"]; ok {
			doc["tags"] = t
			delete(doc, "Tags")
		}
	}
	return json.Marshal(doc)
}

const xmlns = "http://queue.amazonaws.com/doc/2012-11-05/"

func writeXML(w http.ResponseWriter, op string, out any, requestID string) {
	query.Write(w, op, out, requestID)
}

// Refusal renders an authentication refusal (internal/sigv4's) in this API's error shape: JSON
// 1.0 for calls with an X-Amz-Target (json10), the query protocol's XML otherwise.
func Refusal(json10 bool) func(http.ResponseWriter, *apierr.Error) {
	return func(w http.ResponseWriter, a *apierr.Error) {
		e := &Error{Type: a.Code, Code: a.Code, Status: a.Status, Message: a.Message}
		if json10 {
			awsquery.SetQueryError(w, e)
			writeJSONError(w, e)
			return
		}
		writeXMLError(w, e, uuid.NewString())
	}
}
