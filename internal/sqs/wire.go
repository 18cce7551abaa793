package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
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
		w.Header().Set("X-Amzn-Query-Error", e.Code+";"+fault(e))
		if json10 {
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

func fault(e *Error) string {
	if e.Sender() {
		return "Sender"
	}
	return "Receiver"
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
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><ErrorResponse xmlns="` + xmlns + `"><Error><Type>` + fault(e) + `</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(e.Code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(e.Message))
	b.WriteString(`</Message><Detail/></Error><RequestId>` + requestID + `</RequestId></ErrorResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b.Bytes())
}

// queryForm reads a query-protocol request's parameters: the form body of a POST, or the URL's
// query of a GET.
func queryForm(r *http.Request, body []byte) (url.Values, error) {
	if r.Method == http.MethodGet {
		return r.URL.Query(), nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errSerialization("The request body is not a valid form: %v", err)
	}
	// Parameters may also ride in the URL (some clients put Action there).
	for k, vs := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = vs
		}
	}
	return form, nil
}

// The query protocol's flattened members: their form prefix, the JSON member they fill, and
// for key/value pairs, the form names of the key and value.
var (
	queryMaps = map[string]struct{ member, key, value string }{
		"Attribute":              {"Attributes", "Name", "Value"},
		"Tag":                    {"Tags", "Key", "Value"},
		"MessageAttribute":       {"MessageAttributes", "Name", "Value"},
		"MessageSystemAttribute": {"MessageSystemAttributes", "Name", "Value"},
	}
	queryLists = map[string]string{
		"AttributeName":              "AttributeNames",
		"MessageAttributeName":       "MessageAttributeNames",
		"MessageSystemAttributeName": "MessageSystemAttributeNames",
		"TagKey":                     "TagKeys",
	}
	queryEntries = map[string]bool{
		"SendMessageBatchRequestEntry": true, "DeleteMessageBatchRequestEntry": true,
		"ChangeMessageVisibilityBatchRequestEntry": true,
	}
	// attribute values' members, whose values are typed (lists of them are flattened too).
	queryValueLists = map[string]string{"StringListValue": "StringListValues", "BinaryListValue": "BinaryListValues"}
)

// formDocument turns a query-protocol form into the operation's JSON input document, so one
// decoder (the JSON protocol's) reads both wires.
func formDocument(form url.Values) ([]byte, error) {
	flat := map[string]string{}
	for k, vs := range form {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") || len(vs) == 0 {
			continue
		}
		flat[k] = vs[0]
	}
	doc, err := buildDoc(flat, true)
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

// buildDoc builds one level of the document from keys relative to it.
func buildDoc(flat map[string]string, top bool) (map[string]any, error) {
	doc := map[string]any{}
	groups := map[string]map[string]map[string]string{} // prefix → index → rest → value
	for k, v := range flat {
		head, rest, nested := strings.Cut(k, ".")
		if !nested {
			doc[k] = v
			continue
		}
		idx, rest2, _ := strings.Cut(rest, ".")
		if _, err := strconv.Atoi(idx); err != nil {
			// A member of a structure (MessageAttribute.1.Value.StringValue's "Value").
			if groups[head] == nil {
				groups[head] = map[string]map[string]string{}
			}
			if groups[head][""] == nil {
				groups[head][""] = map[string]string{}
			}
			groups[head][""][rest] = v
			continue
		}
		if groups[head] == nil {
			groups[head] = map[string]map[string]string{}
		}
		if groups[head][idx] == nil {
			groups[head][idx] = map[string]string{}
		}
		groups[head][idx][rest2] = v
	}
	for head, byIdx := range groups {
		if sub, ok := byIdx[""]; ok && len(byIdx) == 1 {
			m, err := buildDoc(sub, false)
			if err != nil {
				return nil, err
			}
			doc[head] = m
			continue
		}
		idxs := make([]string, 0, len(byIdx))
		for i := range byIdx {
			idxs = append(idxs, i)
		}
		sort.Slice(idxs, func(a, b int) bool { x, _ := strconv.Atoi(idxs[a]); y, _ := strconv.Atoi(idxs[b]); return x < y })
		switch {
		case queryMaps[head].member != "":
			spec := queryMaps[head]
			m := map[string]any{}
			for _, i := range idxs {
				e := byIdx[i]
				key := e[spec.key]
				if key == "" {
					return nil, errMissing(head + "." + i + "." + spec.key)
				}
				val := map[string]string{}
				for k, v := range e {
					if r, ok := strings.CutPrefix(k, spec.value+"."); ok {
						val[r] = v
					}
				}
				if len(val) > 0 {
					sub, err := buildDoc(val, false)
					if err != nil {
						return nil, err
					}
					m[key] = sub
				} else {
					m[key] = e[spec.value]
				}
			}
			doc[spec.member] = m
		case queryLists[head] != "" || queryValueLists[head] != "":
			member := queryLists[head]
			if member == "" {
				member = queryValueLists[head]
			}
			var l []any
			for _, i := range idxs {
				l = append(l, byIdx[i][""])
			}
			doc[member] = l
		case queryEntries[head] && top:
			var l []any
			for _, i := range idxs {
				sub, err := buildDoc(byIdx[i], false)
				if err != nil {
					return nil, err
				}
				l = append(l, sub)
			}
			doc["Entries"] = l
		default:
			return nil, errSerialization("Unknown parameter %s.", head)
		}
	}
	return doc, nil
}

const xmlns = "http://queue.amazonaws.com/doc/2012-11-05/"

// The query protocol's XML names: a list member's element, per operation where they differ,
// and key/value members' elements.
var (
	xmlLists = map[string]string{"QueueUrls": "QueueUrl", "queueUrls": "QueueUrl", "Messages": "Message",
		"Failed": "BatchResultErrorEntry", "Results": "ListMessageMoveTasksResultEntry"}
	xmlMaps = map[string]struct{ elem, key, value string }{
		"Attributes": {"Attribute", "Name", "Value"}, "Tags": {"Tag", "Key", "Value"},
		"MessageAttributes": {"MessageAttribute", "Name", "Value"},
	}
)

// writeXML renders an operation's answer in the query protocol: <OpResponse><OpResult>…
// </OpResult><ResponseMetadata>…</ResponseMetadata></OpResponse>, lists and maps flattened.
func writeXML(w http.ResponseWriter, op string, out any, requestID string) {
	var doc any
	if b, err := json.Marshal(out); err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		_ = d.Decode(&doc)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><` + op + `Response xmlns="` + xmlns + `">`)
	if m, ok := doc.(map[string]any); ok && len(m) > 0 {
		b.WriteString("<" + op + "Result>")
		writeMembers(&b, op, m)
		b.WriteString("</" + op + "Result>")
	}
	b.WriteString(`<ResponseMetadata><RequestId>` + requestID + `</RequestId></ResponseMetadata></` + op + `Response>`)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b.Bytes())
}

func writeMembers(b *bytes.Buffer, op string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		writeMember(b, op, k, m[k])
	}
}

func writeMember(b *bytes.Buffer, op, name string, v any) {
	switch v := v.(type) {
	case []any:
		elem := xmlLists[name]
		if name == "Successful" {
			elem = op + "ResultEntry"
		}
		if elem == "" {
			elem = name
		}
		for _, e := range v {
			writeMember(b, op, elem, e)
		}
	case map[string]any:
		if spec, ok := xmlMaps[name]; ok {
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				b.WriteString("<" + spec.elem + "><" + spec.key + ">")
				_ = xml.EscapeText(b, []byte(k))
				b.WriteString("</" + spec.key + ">")
				writeMember(b, op, spec.value, v[k])
				b.WriteString("</" + spec.elem + ">")
			}
			return
		}
		b.WriteString("<" + name + ">")
		writeMembers(b, op, v)
		b.WriteString("</" + name + ">")
	default:
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(b, []byte(fmt.Sprint(v)))
		b.WriteString("</" + name + ">")
	}
}

// Refusal renders an authentication refusal (internal/sigv4's) in this API's error shape: JSON
// 1.0 for calls with an X-Amz-Target (json10), the query protocol's XML otherwise.
func Refusal(json10 bool) func(http.ResponseWriter, *apierr.Error) {
	return func(w http.ResponseWriter, a *apierr.Error) {
		e := &Error{Type: a.Code, Code: a.Code, Status: a.Status, Message: a.Message}
		w.Header().Set("X-Amzn-Query-Error", e.Code+";"+fault(e))
		if json10 {
			writeJSONError(w, e)
			return
		}
		writeXMLError(w, e, uuid.NewString())
	}
}
