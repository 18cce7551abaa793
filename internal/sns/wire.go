package sns

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
	base string // the scheme and Host the client addressed: "https://host:port"
}

type operation func(ctx context.Context, c *call, doc []byte) (any, error)

func handle[In any](f func(ctx context.Context, c *call, in *In) (any, error)) operation {
	return func(ctx context.Context, c *call, doc []byte) (any, error) {
		in := new(In)
		if err := json.Unmarshal(doc, in); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, errMalformed("The request could not be read: %v", err)
		}
		return f(ctx, c, in)
	}
}

func (s *Service) operations() map[string]operation {
	return map[string]operation{
		"CreateTopic":               handle(s.createTopic),
		"DeleteTopic":               handle(s.deleteTopic),
		"ListTopics":                handle(s.listTopics),
		"GetTopicAttributes":        handle(s.getTopicAttributes),
		"SetTopicAttributes":        handle(s.setTopicAttributes),
		"Subscribe":                 handle(s.subscribe),
		"ConfirmSubscription":       handle(s.confirmSubscription),
		"Unsubscribe":               handle(s.unsubscribe),
		"ListSubscriptions":         handle(s.listSubscriptions),
		"ListSubscriptionsByTopic":  handle(s.listSubscriptionsByTopic),
		"GetSubscriptionAttributes": handle(s.getSubscriptionAttributes),
		"SetSubscriptionAttributes": handle(s.setSubscriptionAttributes),
		"Publish":                   handle(s.publish),
		"PublishBatch":              handle(s.publishBatch),
		"TagResource":               handle(s.tagResource),
		"UntagResource":             handle(s.untagResource),
		"ListTagsForResource":       handle(s.listTagsForResource),
	}
}

const xmlns = "http://sns.amazonaws.com/doc/2010-03-31/"

// query is SNS's dialect of the query protocol: wrapped lists (member) and maps (entry).
var query = &awsquery.Spec{Namespace: xmlns, WrappedMaps: map[string]bool{"Attributes": true}}

// maxBody bounds a request: a batch of ten 256 KiB messages as a form, with room to spare.
const maxBody = 4 << 20

// ServeHTTP serves one query-protocol call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if IsSigningCert(r) {
		s.serveCert(w, r)
		return
	}
	requestID := uuid.NewString()
	w.Header()["X-Amzn-Requestid"] = []string{requestID}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	c := &call{base: "http://" + r.Host}
	if r.TLS != nil {
		c.base = "https://" + r.Host
	}
	var op string
	var out any
	switch {
	case err != nil:
		err = errMalformed("Could not read the request body.")
	case len(body) > maxBody:
		err = errInvalid("Request body is too large")
	default:
		var form url.Values
		if form, err = awsquery.Form(r, body); err == nil {
			op = form.Get("Action")
			var doc map[string]any
			if doc, err = query.Document(form); err == nil {
				b, _ := json.Marshal(doc)
				out, err = s.run(r.Context(), c, op, b)
			}
		}
	}
	if err != nil {
		e := asError(err)
		if e.Status >= 500 {
			s.log.Error("sns request failed", "operation", op, "request_id", requestID, "err", err)
		} else if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("sns request rejected", "operation", op, "request_id", requestID, "code", e.Code, "message", e.Message)
		}
		query.WriteError(w, e, requestID)
		return
	}
	query.Write(w, op, out, requestID)
}

func (s *Service) run(ctx context.Context, c *call, op string, doc []byte) (any, error) {
	f := s.ops[op]
	if f == nil {
		return nil, errUnknownOperation(op)
	}
	return f(ctx, c, doc)
}

// Refusal renders an authentication refusal (internal/sigv4's) as the query protocol's XML.
func Refusal(w http.ResponseWriter, a *apierr.Error) {
	query.WriteError(w, &Error{Type: a.Code, Code: a.Code, Status: a.Status, Message: a.Message}, uuid.NewString())
}

// IsSNSRequest reports whether r is an SNS API call, for the server to route it here: a
// query-protocol call whose SigV4 scope names the sns service, or, unsigned (the
// local-development mode, and an http subscriber's GET of its SubscribeURL), whose Action is
// one of SNS's; or a GET of a SigningCertURL. An unsigned form POST's body is read to find its Action and put back.
func IsSNSRequest(r *http.Request) bool {
	if IsSigningCert(r) {
		return true
	}
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if strings.Contains(r.Header.Get("Authorization"), "/sns/aws4_request") ||
		strings.Contains(r.URL.RawQuery, "%2Fsns%2Faws4_request") {
		return true
	}
	if r.Header.Get("Authorization") != "" {
		return false
	}
	if strings.Contains(r.URL.RawQuery, "Action=") && queryActions[r.URL.Query().Get("Action")] {
		return true
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if err != nil {
		return false
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && queryActions[form.Get("Action")]
}

// queryActions are the Action values this package answers (none is also SQS's).
var queryActions = map[string]bool{
	"CreateTopic": true, "DeleteTopic": true, "ListTopics": true, "GetTopicAttributes": true,
	"SetTopicAttributes": true, "Subscribe": true, "ConfirmSubscription": true, "Unsubscribe": true,
	"ListSubscriptions": true, "ListSubscriptionsByTopic": true, "GetSubscriptionAttributes": true,
	"SetSubscriptionAttributes": true, "Publish": true, "PublishBatch": true, "TagResource": true,
	"UntagResource": true, "ListTagsForResource": true,
}
