package apigw

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

func TestRouterMatch(t *testing.T) {
	api := &API{Protocol: ProtocolHTTP, Routes: []Route{
		{Method: "GET", Path: "/pets/dog/1"},
		{Method: "GET", Path: "/pets/dog/{id}"},
		{Method: "GET", Path: "/pets/{proxy+}"},
		{Method: "ANY", Path: "/{proxy+}"},
		{Method: "ANY", Path: "/items/{id}"},
		{Method: "DELETE", Path: "/items/{id}"},
		{Method: "GET", Path: "/"},
		{Method: "GET", Path: "/a/{x}/c"},
		{Method: "GET", Path: "/a/b/{y}"},
	}}
	rt := Compile(api)
	for _, tc := range []struct {
		method, path, want string
		params             map[string]string
	}{
		{"GET", "/pets/dog/1", "GET /pets/dog/1", nil},
		{"GET", "/pets/dog/2", "GET /pets/dog/{id}", map[string]string{"id": "2"}},
		{"GET", "/pets/cat/1", "GET /pets/{proxy+}", map[string]string{"proxy": "cat/1"}},
		{"POST", "/pets/cat", "ANY /{proxy+}", map[string]string{"proxy": "pets/cat"}},
		{"DELETE", "/items/9", "DELETE /items/{id}", map[string]string{"id": "9"}},
		{"PUT", "/items/9", "ANY /items/{id}", map[string]string{"id": "9"}},
		{"GET", "/items/9/", "ANY /items/{id}", map[string]string{"id": "9"}},
		{"GET", "/", "GET /", nil},
		{"POST", "/", "", nil}, // a greedy parameter takes one segment at least
		{"GET", "/a/b/c", "GET /a/b/{y}", map[string]string{"y": "c"}},
		{"GET", "/a/z/c", "GET /a/{x}/c", map[string]string{"x": "z"}},
	} {
		m, ok := rt.Match(tc.method, tc.path)
		got := ""
		if ok {
			got = m.Route.Key()
		}
		if got != tc.want || ok && !cmp.Equal(m.PathParameters, tc.params) {
			t.Errorf("%s %s: got %q %v, want %q %v", tc.method, tc.path, got, m.PathParameters, tc.want, tc.params)
		}
	}
	api.Routes = append(api.Routes, Route{Method: "ANY", Path: DefaultRoute})
	if m, ok := Compile(api).Match("POST", "/"); !ok || m.Route.Key() != "$default" {
		t.Errorf("$default: %v %v", ok, m.Route)
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		protocol, path string
		ok             bool
	}{
		{ProtocolHTTP, "/", true},
		{ProtocolHTTP, "/items/{id}", true},
		{ProtocolHTTP, "/items/{proxy+}", true},
		{ProtocolHTTP, "$default", true},
		{ProtocolREST, "$default", false},
		{ProtocolHTTP, "items", false},
		{ProtocolHTTP, "/items/", false},
		{ProtocolHTTP, "/a//b", false},
		{ProtocolHTTP, "/{p+}/b", false},
		{ProtocolHTTP, "/{id}/{id}", false},
		{ProtocolHTTP, "/a{id}", false},
		{ProtocolHTTP, "/{id", false},
		{ProtocolHTTP, "/a b", false},
	} {
		if err := CheckPath(tc.protocol, tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%s, %q) = %v", tc.protocol, tc.path, err)
		}
	}
	if a, b := Shape("/items/{id}"), Shape("/items/{key}"); a != b {
		t.Errorf("shapes differ: %s %s", a, b)
	}
}

func TestParseV1Response(t *testing.T) {
	out, err := ParseV1Response([]byte(`{"statusCode":202,"headers":{"X-A":"1","X-B":"b"},"multiValueHeaders":{"X-A":["2","3"]},"body":"hi"}`))
	if err != nil || out.Status != 202 || !cmp.Equal(out.Headers.Values("X-A"), []string{"2", "3"}) || out.Headers.Get("X-B") != "b" ||
		string(out.Body) != "hi" || out.Headers.Get("Content-Type") != "application/json" {
		t.Errorf("got %+v %v", out, err)
	}
	out, err = ParseV1Response([]byte(`{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}`))
	if err != nil || string(out.Body) != "\x00\x01\x02\xff" {
		t.Errorf("base64: %+v %v", out, err)
	}
	for _, bad := range []string{`"text"`, `{"body":"x"}`, `{"statusCode":"x"}`, `{"statusCode":200,"body":{"a":1}}`,
		`{"statusCode":200,"headers":{"a":["x"]}}`, `{"statusCode":200,"body":"!!","isBase64Encoded":true}`, `not json`} {
		if _, err := ParseV1Response([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", bad, err)
		}
	}
	v2 := ParseV2Response([]byte(`"just a string"`))
	if v2.Status != 200 || string(v2.Body) != `"just a string"` || v2.Headers.Get("Content-Type") != "application/json" {
		t.Errorf("v2 simple answer: %+v", v2)
	}
}

// TestEvents decodes the events into aws-lambda-go's types, which functions use.
func TestEvents(t *testing.T) {
	r := httptest.NewRequest("POST", "http://abcdefghij.execute-api.us-east-1.localhost:9000/Prod/items/7?a=1&a=2", strings.NewReader("x"))
	r.Header.Add("X-Dup", "one")
	r.Header.Add("X-Dup", "two")
	r.Header.Set("Cookie", "c1=v1; c2=v2")
	r.Header.Set("Content-Type", "application/octet-stream")
	api := &API{Name: "n", APIID: "abcdefghij", Protocol: ProtocolREST, Stage: "Prod", StageVariables: map[string]string{"env": "t"},
		Routes: []Route{{Method: "POST", Path: "/items/{id}", PayloadFormatVersion: "1.0"}}}
	m, _ := Compile(api).Match("POST", "/items/7")
	c := Call{Request: r, API: api, Match: m, RawPath: "/Prod/items/7", Path: "/Prod/items/7", RoutePath: "/items/7",
		Domain: "abcdefghij.execute-api.us-east-1.localhost", AccountID: "000000000000", RequestID: "rid", Body: []byte{0, 0xff}, Now: time.Unix(1700000000, 0)}
	b, err := NewV1Request(c)
	if err != nil {
		t.Fatal(err)
	}
	var v1 events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &v1); err != nil {
		t.Fatal(err)
	}
	if v1.Resource != "/items/{id}" || v1.Path != "/items/7" || v1.HTTPMethod != "POST" || v1.PathParameters["id"] != "7" ||
		v1.QueryStringParameters["a"] != "2" || !cmp.Equal(v1.MultiValueQueryStringParameters["a"], []string{"1", "2"}) ||
		!cmp.Equal(v1.MultiValueHeaders["X-Dup"], []string{"one", "two"}) || v1.Headers["Host"] != r.Host ||
		v1.StageVariables["env"] != "t" || !v1.IsBase64Encoded || v1.Body != "AP8=" ||
		v1.RequestContext.Stage != "Prod" || v1.RequestContext.Path != "/Prod/items/7" || v1.RequestContext.ResourcePath != "/items/{id}" ||
		v1.RequestContext.APIID != "abcdefghij" || v1.RequestContext.Identity.SourceIP != "192.0.2.1" || v1.RequestContext.RequestTimeEpoch != 1700000000000 {
		t.Errorf("v1 event: %s", b)
	}
	api.Protocol, api.Stage = ProtocolHTTP, DefaultStage
	api.Routes[0].PayloadFormatVersion = "2.0"
	c.Path, c.RawPath, c.RoutePath, c.Body = "/items/7", "/items/7", "/items/7", []byte("text")
	r.Header.Set("Content-Type", "text/plain")
	b, err = NewV2Request(c)
	if err != nil {
		t.Fatal(err)
	}
	var v2 events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &v2); err != nil {
		t.Fatal(err)
	}
	if v2.Version != "2.0" || v2.RouteKey != "POST /items/{id}" || v2.RawPath != "/items/7" || v2.RawQueryString != "a=1&a=2" ||
		v2.QueryStringParameters["a"] != "1,2" || v2.Headers["x-dup"] != "one,two" || !cmp.Equal(v2.Cookies, []string{"c1=v1", "c2=v2"}) ||
		v2.PathParameters["id"] != "7" || v2.StageVariables["env"] != "t" || v2.Body != "text" || v2.IsBase64Encoded ||
		v2.RequestContext.HTTP.Method != "POST" || v2.RequestContext.Stage != "$default" || v2.RequestContext.DomainPrefix != "abcdefghij" {
		t.Errorf("v2 event: %s", b)
	}
	var loose map[string]any
	_ = json.Unmarshal(b, &loose)
	if _, ok := loose["requestContext"].(map[string]any)["authentication"]; ok {
		t.Errorf("an HTTP API event without mTLS has no authentication: %s", b)
	}
}
