package functionurl

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/flint-run/flint/internal/apigw"
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
		PathParameters: nil, StageVariables: nil,
		RequestContext: URLRequestContext{
			AccountID: accountID, APIID: urlID, DomainName: domain, DomainPrefix: urlID,
			HTTP:      URLHTTPContext{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: apigw.SourceIP(r), UserAgent: r.UserAgent()},
			RequestID: requestID, RouteKey: "$default", Stage: "$default",
			Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		},
	}
	ev.Headers, ev.Cookies = apigw.LowerHeaders(r)
	ev.QueryStringParameters = apigw.JoinedQuery(r.URL.RawQuery)
	ev.Body, ev.IsBase64Encoded = apigw.EncodeBody(body, r.Header.Get("Content-Type"))
	return json.Marshal(ev)
}

// URLResponse is what a function URL answers: status, headers and body.
type URLResponse = apigw.Response

// ParseURLResponse applies Lambda's rules to a function's result (payload format 2.0's, as HTTP
// APIs): a JSON object with statusCode is an HTTP response (headers, multiValueHeaders, cookies,
// body, isBase64Encoded); any other valid JSON is a 200 application/json body as returned.
func ParseURLResponse(payload []byte) URLResponse { return apigw.ParseV2Response(payload) }
