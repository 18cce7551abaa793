package apigw

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Call is one request to an API, its route found, on its way to becoming the function's event.
type Call struct {
	Request *http.Request
	API     *API
	Match   Match
	// RawPath is the path as sent, escaped, with the stage segment (if any) and without the
	// API's host or /execute-api/{apiId} prefix; Path is RawPath decoded; RoutePath is Path
	// without the stage segment: what the routes matched.
	RawPath, Path, RoutePath string
	Domain                   string // the API's host name, {apiId}.execute-api.{region}.localhost
	AccountID, RequestID     string
	Body                     []byte
	Now                      time.Time
}

// V2Request is an HTTP API request event (payload format 2.0).
type V2Request struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters,omitempty"`
	RequestContext        V2RequestContext  `json:"requestContext"`
	StageVariables        map[string]string `json:"stageVariables,omitempty"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

// V2RequestContext is a 2.0 event's requestContext.
type V2RequestContext struct {
	AccountID    string        `json:"accountId"`
	APIID        string        `json:"apiId"`
	DomainName   string        `json:"domainName"`
	DomainPrefix string        `json:"domainPrefix"`
	HTTP         V2HTTPContext `json:"http"`
	RequestID    string        `json:"requestId"`
	RouteKey     string        `json:"routeKey"`
	Stage        string        `json:"stage"`
	Time         string        `json:"time"`
	TimeEpoch    int64         `json:"timeEpoch"`
}

// V2HTTPContext describes the HTTP request of a 2.0 event.
type V2HTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// requestTime is API Gateway's format of requestContext.time and .requestTime.
const requestTime = "02/Jan/2006:15:04:05 -0700"

// NewV2Request builds an HTTP API's payload format 2.0 event for c.
func NewV2Request(c Call) ([]byte, error) {
	r := c.Request
	headers, cookies := LowerHeaders(r)
	ev := V2Request{
		Version: "2.0", RouteKey: c.Match.Route.Key(), RawPath: c.RawPath, RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: JoinedQuery(r.URL.RawQuery),
		PathParameters: c.Match.PathParameters, StageVariables: stageVariables(c.API),
		RequestContext: V2RequestContext{
			AccountID: c.AccountID, APIID: c.API.APIID, DomainName: c.Domain, DomainPrefix: c.API.APIID,
			HTTP:      V2HTTPContext{Method: r.Method, Path: c.Path, Protocol: r.Proto, SourceIP: SourceIP(r), UserAgent: r.UserAgent()},
			RequestID: c.RequestID, RouteKey: c.Match.Route.Key(), Stage: c.API.Stage,
			Time: c.Now.UTC().Format(requestTime), TimeEpoch: c.Now.UnixMilli(),
		},
	}
	ev.Body, ev.IsBase64Encoded = EncodeBody(c.Body, r.Header.Get("Content-Type"))
	return json.Marshal(ev)
}

// V1Request is a REST API request event, and an HTTP API's payload format 1.0 event (which
// carries Version "1.0" and lowercase header names).
type V1Request struct {
	Version                         string              `json:"version,omitempty"`
	Resource                        string              `json:"resource"`
	Path                            string              `json:"path"`
	HTTPMethod                      string              `json:"httpMethod"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	PathParameters                  map[string]string   `json:"pathParameters"`
	StageVariables                  map[string]string   `json:"stageVariables"`
	RequestContext                  V1RequestContext    `json:"requestContext"`
	Body                            *string             `json:"body"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

// V1RequestContext is a 1.0 event's requestContext.
type V1RequestContext struct {
	AccountID         string     `json:"accountId"`
	APIID             string     `json:"apiId"`
	DomainName        string     `json:"domainName"`
	DomainPrefix      string     `json:"domainPrefix"`
	ExtendedRequestID string     `json:"extendedRequestId"`
	HTTPMethod        string     `json:"httpMethod"`
	Identity          V1Identity `json:"identity"`
	Path              string     `json:"path"`
	Protocol          string     `json:"protocol"`
	RequestID         string     `json:"requestId"`
	RequestTime       string     `json:"requestTime"`
	RequestTimeEpoch  int64      `json:"requestTimeEpoch"`
	ResourceID        string     `json:"resourceId"`
	ResourcePath      string     `json:"resourcePath"`
	RouteKey          string     `json:"routeKey,omitempty"` // HTTP APIs only
	Stage             string     `json:"stage"`
}

// V1Identity is requestContext.identity: with no authorizer, only the caller's address and
// user agent are known; the rest is null as API Gateway sends it.
type V1Identity struct {
	AccessKey                     *string `json:"accessKey"`
	AccountID                     *string `json:"accountId"`
	Caller                        *string `json:"caller"`
	CognitoAuthenticationProvider *string `json:"cognitoAuthenticationProvider"`
	CognitoAuthenticationType     *string `json:"cognitoAuthenticationType"`
	CognitoIdentityID             *string `json:"cognitoIdentityId"`
	CognitoIdentityPoolID         *string `json:"cognitoIdentityPoolId"`
	PrincipalOrgID                *string `json:"principalOrgId"`
	SourceIP                      string  `json:"sourceIp"`
	User                          *string `json:"user"`
	UserAgent                     string  `json:"userAgent"`
	UserArn                       *string `json:"userArn"`
}

// NewV1Request builds a REST API's event, or an HTTP API's payload format 1.0 event, for c.
func NewV1Request(c Call) ([]byte, error) {
	r := c.Request
	rest := c.API.Protocol == ProtocolREST
	name := func(k string) string { return k } // REST APIs pass header names as sent
	if !rest {
		name = strings.ToLower
	}
	ev := V1Request{HTTPMethod: r.Method, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
		PathParameters: c.Match.PathParameters, StageVariables: stageVariables(c.API)}
	for k, vs := range r.Header {
		k = name(k)
		ev.MultiValueHeaders[k] = append(ev.MultiValueHeaders[k], vs...)
		ev.Headers[k] = vs[len(vs)-1] // headers holds the last value, as API Gateway's does
	}
	host := name("Host")
	ev.Headers[host], ev.MultiValueHeaders[host] = r.Host, []string{r.Host}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = make(map[string]string, len(q)), q
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
	}
	resource := c.Match.Route.Path
	ctx := V1RequestContext{AccountID: c.AccountID, APIID: c.API.APIID, DomainName: c.Domain, DomainPrefix: c.API.APIID,
		ExtendedRequestID: extendedID(c.RequestID), HTTPMethod: r.Method,
		Identity: V1Identity{SourceIP: SourceIP(r), UserAgent: r.UserAgent()}, Protocol: r.Proto, RequestID: c.RequestID,
		RequestTime: c.Now.UTC().Format(requestTime), RequestTimeEpoch: c.Now.UnixMilli(), Stage: c.API.Stage}
	if rest {
		// A REST API's path is the resource's, its requestContext.path the one requested, stage
		// included.
		ev.Path, ctx.Path = c.RoutePath, c.Path
	} else {
		ev.Version, ev.Path, ctx.Path, ctx.RouteKey = "1.0", c.Path, c.Path, c.Match.Route.Key()
		if resource == DefaultRoute {
			resource = c.RoutePath
		}
	}
	ev.Resource, ctx.ResourcePath, ctx.ResourceID = resource, resource, resourceID(c.Match.Route.Key())
	ev.RequestContext = ctx
	if len(c.Body) > 0 {
		var body string
		body, ev.IsBase64Encoded = EncodeBody(c.Body, r.Header.Get("Content-Type"))
		ev.Body = &body
	}
	return json.Marshal(ev)
}

func stageVariables(api *API) map[string]string {
	if len(api.StageVariables) == 0 {
		return nil
	}
	return api.StageVariables
}

// resourceID is a resource's stable id, six lowercase letters and digits as API Gateway's.
func resourceID(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	n, b := h.Sum32(), make([]byte, 6)
	for i := range b {
		b[i] = alphabet[n%36]
		n /= 36
	}
	return string(b)
}

// extendedID is requestContext.extendedRequestId: API Gateway's is a short base64 string.
func extendedID(requestID string) string {
	h := fnv.New64a()
	h.Write([]byte(requestID))
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil)) + "="
}

// LowerHeaders is a 2.0 event's headers and cookies: names in lowercase, repeated values joined
// with commas, the Cookie headers split into their cookies, Host included.
func LowerHeaders(r *http.Request) (map[string]string, []string) {
	headers := make(map[string]string, len(r.Header)+1)
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	return headers, cookies
}

// JoinedQuery is a 2.0 event's queryStringParameters: repeated values joined with commas; nil
// for no query.
func JoinedQuery(raw string) map[string]string {
	q, err := url.ParseQuery(raw)
	if err != nil || len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, vs := range q {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// EncodeBody is an event's body: the text as is, base64 (isBase64Encoded) when it is not valid
// UTF-8 or its content type is not a text type.
func EncodeBody(body []byte, contentType string) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if utf8.Valid(body) && !isBinary(contentType) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
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

// SourceIP is the caller's address.
func SourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
