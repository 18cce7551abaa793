// Package awsquery is the AWS query protocol's codec, shared by the APIs Flint serves in it
// (SQS, SNS): a form-encoded request (Action=<Op>&Version=…) is turned into the JSON document
// the operation's input decodes from, so one implementation of each operation serves every
// wire; the operation's answer is rendered as <OpResponse><OpResult>…</OpResult>…; errors as
// <ErrorResponse>, with the x-amzn-query-error header the JSON protocols repeat the code in.
//
// The protocol's lists and maps come in two layouts. Services such as SQS flatten them
// (Attribute.1.Name, Attribute.1.Value; <Attribute><Name>…); which form prefix fills which
// member is per service, in a Spec. Others such as SNS wrap them (Attributes.entry.1.key,
// Tags.member.1.Key; <Topics><member>…</member></Topics>): those are recognised by their
// "member"/"entry" segment and need no table.
package awsquery

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Error is an API error as AWS sends it: the JSON protocols' __type, the query protocol's code
// (which the JSON protocols repeat in the x-amzn-query-error header, and the SDKs report as
// the error code), the HTTP status and the message.
type Error struct {
	Type    string // JSON __type, "com.amazonaws.sqs#QueueDoesNotExist"
	Code    string // query protocol code, "AWS.SimpleQueueService.NonExistentQueue"
	Status  int
	Message string
	Cause   error // logged, never sent
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Cause }

// Sender reports whether the client is at fault ("Sender"), else the service ("Receiver").
func (e *Error) Sender() bool { return e.Status < 500 }

// Fault is the error's <Type>: "Sender" or "Receiver".
func (e *Error) Fault() string {
	if e.Sender() {
		return "Sender"
	}
	return "Receiver"
}

// As returns the API error inside err, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// MapSpec names a flattened key/value member: its form prefix or XML element, the key's and
// the value's names, and (in a Spec's FormMaps) the JSON member it fills.
type MapSpec struct{ Member, Key, Value string }

// Spec is one service's dialect of the protocol.
type Spec struct {
	Namespace string // the XML namespace, "http://queue.amazonaws.com/doc/2012-11-05/"
	// Flattened members in requests: key/value maps, scalar lists and lists of structures, by
	// form prefix (Attribute → {Attributes, Name, Value}; AttributeName → AttributeNames;
	// SendMessageBatchRequestEntry → Entries).
	FormMaps    map[string]MapSpec
	FormLists   map[string]string
	FormEntries map[string]string
	// Flattened members in answers: a list's element name by member (ListElem may decide per
	// operation), a map's element and key/value names by member. Lists in neither are
	// rendered wrapped, <Name><member>…</member></Name>, unless Flat.
	XMLLists map[string]string
	XMLMaps  map[string]MapSpec
	ListElem func(op, member string) string
	// WrappedMaps are the answers' members that are maps, rendered <Name><entry><key>…</key>
	// <value>…</value></entry></Name> (any other object is a structure).
	WrappedMaps map[string]bool
	// Flat: the service flattens lists not named above too (SQS); otherwise they are wrapped.
	Flat bool
}

// errSerialization is the query protocol's malformed-request error.
func errSerialization(format string, args ...any) *Error {
	return &Error{Type: "com.amazon.coral.service#SerializationException", Code: "MalformedQueryString",
		Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errMissing(param string) *Error {
	return &Error{Type: "com.amazon.coral.service#MissingParameterException", Code: "MissingParameter",
		Status: http.StatusBadRequest, Message: fmt.Sprintf("The request must contain the parameter %s.", param)}
}

// Form reads a query-protocol request's parameters: the form body of a POST, or the URL's
// query of a GET.
func Form(r *http.Request, body []byte) (url.Values, error) {
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

// Document turns a query-protocol form into the operation's JSON input document as a map
// (Action, Version and X-Amz-* parameters left out).
func (s *Spec) Document(form url.Values) (map[string]any, error) {
	flat := map[string]string{}
	for k, vs := range form {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") || len(vs) == 0 {
			continue
		}
		flat[k] = vs[0]
	}
	return s.build(flat, true)
}

// build builds one level of the document from keys relative to it.
func (s *Spec) build(flat map[string]string, top bool) (map[string]any, error) {
	doc := map[string]any{}
	groups := map[string]map[string]map[string]string{} // prefix → index → rest → value
	wrapped := map[string]string{}                      // prefix → "member" or "entry"
	add := func(head, idx, rest, v string) {
		if groups[head] == nil {
			groups[head] = map[string]map[string]string{}
		}
		if groups[head][idx] == nil {
			groups[head][idx] = map[string]string{}
		}
		groups[head][idx][rest] = v
	}
	for k, v := range flat {
		head, rest, nested := strings.Cut(k, ".")
		if !nested {
			doc[k] = v
			continue
		}
		seg, after, _ := strings.Cut(rest, ".")
		if seg == "member" || seg == "entry" {
			idx, rest2, _ := strings.Cut(after, ".")
			if _, err := strconv.Atoi(idx); err == nil {
				wrapped[head] = seg
				add(head, idx, rest2, v)
				continue
			}
		}
		if _, err := strconv.Atoi(seg); err != nil {
			// A member of a structure (MessageAttribute.1.Value.StringValue's "Value").
			add(head, "", rest, v)
			continue
		}
		add(head, seg, after, v)
	}
	for head, byIdx := range groups {
		if sub, ok := byIdx[""]; ok && len(byIdx) == 1 && wrapped[head] == "" {
			m, err := s.build(sub, false)
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
		case wrapped[head] == "entry":
			m, err := s.entries(head+".entry", idxs, byIdx, firstKey(byIdx, "key", "Name", "Key"), firstKey(byIdx, "value", "Value", "Value"))
			if err != nil {
				return nil, err
			}
			doc[head] = m
		case wrapped[head] == "member":
			l, err := s.list(idxs, byIdx)
			if err != nil {
				return nil, err
			}
			doc[head] = l
		case s.FormMaps[head].Member != "":
			spec := s.FormMaps[head]
			m, err := s.entries(head, idxs, byIdx, spec.Key, spec.Value)
			if err != nil {
				return nil, err
			}
			doc[spec.Member] = m
		case s.FormLists[head] != "":
			l, err := s.list(idxs, byIdx)
			if err != nil {
				return nil, err
			}
			doc[s.FormLists[head]] = l
		case s.FormEntries[head] != "" && top:
			l, err := s.list(idxs, byIdx)
			if err != nil {
				return nil, err
			}
			doc[s.FormEntries[head]] = l
		default:
			return nil, errSerialization("Unknown parameter %s.", head)
		}
	}
	return doc, nil
}

// firstKey picks the name an entry's key (or value) goes by: "key"/"value" for plain maps,
// "Name"/"Value" for message attributes.
func firstKey(byIdx map[string]map[string]string, names ...string) string {
	for _, e := range byIdx {
		for _, n := range names {
			for k := range e {
				if k == n || strings.HasPrefix(k, n+".") {
					return n
				}
			}
		}
	}
	return names[0]
}

func (s *Spec) entries(head string, idxs []string, byIdx map[string]map[string]string, key, value string) (map[string]any, error) {
	m := map[string]any{}
	for _, i := range idxs {
		e := byIdx[i]
		k, ok := e[key]
		if !ok || k == "" {
			return nil, errMissing(head + "." + i + "." + key)
		}
		val := map[string]string{}
		for n, v := range e {
			if r, ok := strings.CutPrefix(n, value+"."); ok {
				val[r] = v
			}
		}
		if len(val) > 0 {
			sub, err := s.build(val, false)
			if err != nil {
				return nil, err
			}
			m[k] = sub
		} else {
			m[k] = e[value]
		}
	}
	return m, nil
}

func (s *Spec) list(idxs []string, byIdx map[string]map[string]string) ([]any, error) {
	l := []any{}
	for _, i := range idxs {
		e := byIdx[i]
		if v, ok := e[""]; ok && len(e) == 1 {
			l = append(l, v)
			continue
		}
		sub, err := s.build(e, false)
		if err != nil {
			return nil, err
		}
		l = append(l, sub)
	}
	return l, nil
}

// WriteError renders e as the query protocol's <ErrorResponse>, with x-amzn-query-error.
func (s *Spec) WriteError(w http.ResponseWriter, e *Error, requestID string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><ErrorResponse xmlns="` + s.Namespace + `"><Error><Type>` + e.Fault() + `</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(e.Code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(e.Message))
	b.WriteString(`</Message><Detail/></Error><RequestId>` + requestID + `</RequestId></ErrorResponse>`)
	SetQueryError(w, e)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b.Bytes())
}

// SetQueryError sets x-amzn-query-error, "Code;Fault", which JSON-protocol clients of a
// service that also speaks the query protocol read the error code from.
func SetQueryError(w http.ResponseWriter, e *Error) {
	w.Header().Set("X-Amzn-Query-Error", e.Code+";"+e.Fault())
}

// Empty answers an operation whose output shape has no members (SNS's TagResource): it is
// rendered as an empty <OpResult>, as for any answer whose members are all left out (a
// ReceiveMessage that got nothing). nil or struct{}{} answer an operation without an output
// shape (DeleteMessage, SetTopicAttributes): no result element. The difference matters to
// clients: botocore fails on an answer without the result element its operation's model names.
type Empty struct{}

// Write renders an operation's answer: <OpResponse><OpResult>…</OpResult><ResponseMetadata>…
// </ResponseMetadata></OpResponse>, without the result element when out is nil or struct{}{}.
func (s *Spec) Write(w http.ResponseWriter, op string, out any, requestID string) {
	var doc any
	if b, err := json.Marshal(out); err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		_ = d.Decode(&doc)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><` + op + `Response xmlns="` + s.Namespace + `">`)
	if _, none := out.(struct{}); none {
		doc = nil
	}
	if m, ok := doc.(map[string]any); ok {
		b.WriteString("<" + op + "Result>")
		s.members(&b, op, m)
		b.WriteString("</" + op + "Result>")
	}
	b.WriteString(`<ResponseMetadata><RequestId>` + requestID + `</RequestId></ResponseMetadata></` + op + `Response>`)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b.Bytes())
}

func (s *Spec) members(b *bytes.Buffer, op string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s.member(b, op, k, m[k])
	}
}

func (s *Spec) member(b *bytes.Buffer, op, name string, v any) {
	switch v := v.(type) {
	case []any:
		elem := s.XMLLists[name]
		if s.ListElem != nil && elem == "" {
			elem = s.ListElem(op, name)
		}
		if elem == "" && !s.Flat {
			b.WriteString("<" + name + ">")
			for _, e := range v {
				s.member(b, op, "member", e)
			}
			b.WriteString("</" + name + ">")
			return
		}
		if elem == "" {
			elem = name
		}
		for _, e := range v {
			s.member(b, op, elem, e)
		}
	case map[string]any:
		spec, flat := s.XMLMaps[name]
		wrapped := !flat && s.WrappedMaps[name]
		if !flat && !wrapped {
			// A structure.
			b.WriteString("<" + name + ">")
			s.members(b, op, v)
			b.WriteString("</" + name + ">")
			return
		}
		if wrapped {
			spec = MapSpec{Member: "entry", Key: "key", Value: "value"}
			b.WriteString("<" + name + ">")
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString("<" + spec.Member + "><" + spec.Key + ">")
			_ = xml.EscapeText(b, []byte(k))
			b.WriteString("</" + spec.Key + ">")
			s.member(b, op, spec.Value, v[k])
			b.WriteString("</" + spec.Member + ">")
		}
		if wrapped {
			b.WriteString("</" + name + ">")
		}
	default:
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(b, []byte(fmt.Sprint(v)))
		b.WriteString("</" + name + ">")
	}
}
