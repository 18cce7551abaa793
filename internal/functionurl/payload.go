package functionurl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// URLRequest is a function URL request event (payload format 2.0).
type URLRequest struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        URLRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	PathParameters        map[string]string `json:"pathParameters"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
	StageVariables        map[string]string `json:"stageVariables"`
}

// URLRequestContext is the request's requestContext.
type URLRequestContext struct {
	AccountID      string         `json:"accountId"`
	APIID          string         `json:"apiId"`
	Authentication any            `json:"authentication"`
	Authorizer     any            `json:"authorizer"`
	DomainName     string         `json:"domainName"`
	DomainPrefix   string         `json:"domainPrefix"`
	HTTP           URLHTTPContext `json:"http"`
	RequestID      string         `json:"requestId"`
	RouteKey       string         `json:"routeKey"`
	Stage          string         `json:"stage"`
	Time           string         `json:"time"`
	TimeEpoch      int64          `json:"timeEpoch"`
}

// URLHTTPContext describes the HTTP request.
type URLHTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// NewURLRequest builds the event for r (path is the path the function sees, the URL id and host
// routing removed); body is read whole (the caller bounds it).
func NewURLRequest(r *http.Request, path, urlID, domain, accountID, requestID string, body []byte, now time.Time) ([]byte, error) {
	ev := URLRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, PathParameters: nil, StageVariables: nil,
		RequestContext: URLRequestContext{
			AccountID: accountID, APIID: urlID, DomainName: domain, DomainPrefix: urlID,
			HTTP:      URLHTTPContext{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: sourceIP(r), UserAgent: r.UserAgent()},
			RequestID: requestID, RouteKey: "$default", Stage: "$default",
			Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		},
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[lk] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = r.Host
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) && !isBinary(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return json.Marshal(ev)
}

func isBinary(contentType string) bool {
	ct := strings.ToLower(contentType)
	for _, text := range []string{"text/", "json", "xml", "javascript", "x-www-form-urlencoded", "yaml"} {
		if strings.Contains(ct, text) {
			return false
		}
	}
	return ct != ""
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// URLResponse is what a function URL answers: status, headers and body.
type URLResponse struct {
	Status  int
	Headers http.Header
	Body    []byte
}

// ParseURLResponse applies Lambda's rules to a function's result: a JSON object with statusCode
// is an HTTP response (headers, multiValueHeaders, cookies, body, isBase64Encoded); any other
// valid JSON is a 200 application/json body as returned.
func ParseURLResponse(payload []byte) URLResponse {
	out := URLResponse{Status: http.StatusOK, Headers: http.Header{}}
	var shaped struct {
		StatusCode        *int                `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Cookies           []string            `json:"cookies"`
		Body              *string             `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) && json.Unmarshal(payload, &shaped) == nil && shaped.StatusCode != nil {
		out.Status = *shaped.StatusCode
		keys := make([]string, 0, len(shaped.Headers))
		for k := range shaped.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out.Headers.Set(k, shaped.Headers[k])
		}
		for k, vs := range shaped.MultiValueHeaders {
			for _, v := range vs {
				out.Headers.Add(k, v)
			}
		}
		for _, c := range shaped.Cookies {
			out.Headers.Add("Set-Cookie", c)
		}
		if shaped.Body != nil {
			out.Body = []byte(*shaped.Body)
			if shaped.IsBase64Encoded {
				if b, err := base64.StdEncoding.DecodeString(*shaped.Body); err == nil {
					out.Body = b
				}
			}
		}
		if out.Headers.Get("Content-Type") == "" && len(out.Body) > 0 {
			out.Headers.Set("Content-Type", "application/json")
		}
		return out
	}
	out.Headers.Set("Content-Type", "application/json")
	out.Body = payload
	return out
}
