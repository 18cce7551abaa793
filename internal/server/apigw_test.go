package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"
)

// gwPython answers what the Go function does not: a plain JSON object (an HTTP API's simple
// answer, a REST API's malformed one) and the caught-all requests of $default.
const gwPython = `import json
def handler(event, context):
    path = event.get("rawPath") or event.get("path")
    if path in ("/plain", "/bad"):
        return {"hello": "world"}
    return {"statusCode": 200, "body": json.dumps({"caught": path, "route": event.get("routeKey")})}
`

type gwAnswer struct {
	status int
	header http.Header
	body   []byte
}

// gwCall sends a request to an API: host "" sends it to base as is (the /execute-api/ path
// form); otherwise with that Host header (the {apiId}.execute-api… form).
func gwCall(t *testing.T, method, base, host, path string, body []byte, header map[string]string) gwAnswer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return gwAnswer{resp.StatusCode, resp.Header, b}
}

// gwManage sends a management request (unsigned: the test server runs in development mode).
func gwManage(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func mustJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestAPIGateway puts an HTTP API and a REST API in front of an aws-lambda-go function and a
// Python one and calls them by host and by path: path parameters, greedy paths, multi-value
// query strings, stage variables, cookies, base64 bodies both ways, each format's response
// shapes, unmatched routes and stages, a failing function, a replaced API and a deleted one.
func TestAPIGateway(t *testing.T) {
	gwZip, err := buildGo(t.TempDir(), "./testdata/apigw")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	createFunction(t, c, "gw", "provided.al2023", "bootstrap", gwZip)
	createFunction(t, c, "py", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: gwPython}}))
	if _, err := c.PublishVersion(context.Background(), &lambda.PublishVersionInput{FunctionName: aws.String("gw")}); err != nil {
		t.Fatal(err)
	}
	mgmt := s.URL() + "/flint/v1/apis/"
	base, _ := url.Parse(s.URL())

	httpAPI := map[string]any{"protocol": "HTTP", "stageVariables": map[string]string{"env": "test"}, "tags": map[string]string{"flint:stack": "shop"},
		"routes": []map[string]any{
			{"method": "GET", "path": "/items/{id}", "function": "gw"},
			{"method": "GET", "path": "/items/special", "function": "arn:aws:lambda:us-east-1:000000000000:function:gw:1"},
			{"method": "ANY", "path": "/files/{proxy+}", "function": "gw"},
			{"method": "POST", "path": "/items", "function": "gw", "payloadFormatVersion": "1.0"},
			{"method": "GET", "path": "/fail", "function": "gw"},
			{"method": "GET", "path": "/plain", "function": "py"},
			{"method": "ANY", "path": "$default", "function": "py"},
		}}
	status, out := gwManage(t, "PUT", mgmt+"shop-http", httpAPI)
	if status != 200 {
		t.Fatalf("PUT HTTP API: %d %v", status, out)
	}
	id, _ := out["apiId"].(string)
	wantEndpoint := "http://" + id + ".execute-api.us-east-1.localhost:" + base.Port() + "/"
	if len(id) != 10 || strings.ToLower(id) != id || out["endpoint"] != wantEndpoint || out["stage"] != "$default" || out["name"] != "shop-http" {
		t.Fatalf("PUT answer: %v (endpoint want %s)", out, wantEndpoint)
	}
	routes := out["routes"].([]any)
	if r := routes[1].(map[string]any); r["function"] != "gw" || r["qualifier"] != "1" || r["payloadFormatVersion"] != "2.0" {
		t.Errorf("an ARN with a version is kept as name and qualifier: %v", r)
	}
	host := id + ".execute-api.us-east-1.localhost:" + base.Port()
	forms := []struct{ name, base, host string }{
		{"host", s.URL(), host},
		{"path", s.URL() + "/execute-api/" + id, ""},
	}
	for _, f := range forms {
		t.Run("http-"+f.name, func(t *testing.T) {
			a := gwCall(t, "GET", f.base, f.host, "/items/42?a=1&a=2&b=x%20y", nil, map[string]string{"Cookie": "c1=v1; c2=v2", "X-Dup": "d"})
			if a.status != 200 || a.header.Get("X-Route") != "GET /items/{id}" || !cmp.Equal(a.header.Values("Set-Cookie"), []string{"a=1; Path=/", "b=2"}) ||
				a.header.Get("Apigw-Requestid") == "" {
				t.Fatalf("GET /items/42: %d %v %s", a.status, a.header, a.body)
			}
			ev := mustJSON[events.APIGatewayV2HTTPRequest](t, a.body)
			if ev.Version != "2.0" || ev.RouteKey != "GET /items/{id}" || ev.RawPath != "/items/42" || ev.RawQueryString != "a=1&a=2&b=x%20y" ||
				!cmp.Equal(ev.QueryStringParameters, map[string]string{"a": "1,2", "b": "x y"}) ||
				!cmp.Equal(ev.PathParameters, map[string]string{"id": "42"}) || !cmp.Equal(ev.StageVariables, map[string]string{"env": "test"}) ||
				!cmp.Equal(ev.Cookies, []string{"c1=v1", "c2=v2"}) || ev.Headers["x-dup"] != "d" ||
				ev.RequestContext.APIID != id || ev.RequestContext.Stage != "$default" || ev.RequestContext.HTTP.Method != "GET" ||
				ev.RequestContext.HTTP.Path != "/items/42" || ev.RequestContext.HTTP.SourceIP != "127.0.0.1" ||
				ev.RequestContext.DomainName != id+".execute-api.us-east-1.localhost" || ev.RequestContext.RequestID != a.header.Get("Apigw-Requestid") {
				t.Errorf("v2 event: %s", a.body)
			}
			// An exact path before a parameter, and a route to a published version.
			if a := gwCall(t, "GET", f.base, f.host, "/items/special", nil, nil); a.status != 200 || a.header.Get("X-Route") != "GET /items/special" {
				t.Errorf("GET /items/special: %d %v %s", a.status, a.header, a.body)
			}
			a = gwCall(t, "DELETE", f.base, f.host, "/files/a/b/c.txt", nil, nil)
			if ev := mustJSON[events.APIGatewayV2HTTPRequest](t, a.body); a.status != 200 || ev.RouteKey != "ANY /files/{proxy+}" ||
				ev.PathParameters["proxy"] != "a/b/c.txt" {
				t.Errorf("greedy: %d %s", a.status, a.body)
			}
			// Binary both ways: a binary request body arrives base64, a base64 answer leaves binary.
			a = gwCall(t, "PUT", f.base, f.host, "/files/blob", []byte{0, 1, 0xfe, 0xff}, map[string]string{"Content-Type": "application/octet-stream"})
			if ev := mustJSON[events.APIGatewayV2HTTPRequest](t, a.body); !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte{0, 1, 0xfe, 0xff}) {
				t.Errorf("binary request: %s", a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/items/1?bin=1", nil, nil); a.status != 200 || !bytes.Equal(a.body, []byte{0, 1, 2, 255}) ||
				a.header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("binary answer: %d %v %q", a.status, a.header, a.body)
			}
			// A 1.0 route of an HTTP API: lowercase headers, multiValue fields, v1 answer.
			a = gwCall(t, "POST", f.base, f.host, "/items?k=1&k=2", []byte(`{"n":1}`), map[string]string{"Content-Type": "application/json"})
			if a.status != 201 || !cmp.Equal(a.header.Values("X-Multi"), []string{"one", "two"}) || a.header.Get("X-Single") != "s" {
				t.Fatalf("1.0 route: %d %v %s", a.status, a.header, a.body)
			}
			v1 := mustJSON[struct {
				events.APIGatewayProxyRequest
				Version string `json:"version"`
			}](t, a.body)
			if v1.Version != "1.0" || v1.HTTPMethod != "POST" || v1.Resource != "/items" || v1.Body != `{"n":1}` || v1.IsBase64Encoded ||
				!cmp.Equal(v1.MultiValueQueryStringParameters["k"], []string{"1", "2"}) || v1.Headers["content-type"] != "application/json" ||
				v1.StageVariables["env"] != "test" || v1.RequestContext.APIID != id {
				t.Errorf("1.0 event: %s", a.body)
			}
			// A simple answer (JSON without statusCode) is a 200 application/json body as is.
			if a := gwCall(t, "GET", f.base, f.host, "/plain", nil, nil); a.status != 200 || string(a.body) != `{"hello": "world"}` ||
				a.header.Get("Content-Type") != "application/json" {
				t.Errorf("simple answer: %d %v %s", a.status, a.header, a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/fail", nil, nil); a.status != 502 || string(a.body) != `{"message":"Internal server error"}` {
				t.Errorf("failing function: %d %s", a.status, a.body)
			}
			// $default takes what no route does.
			if a := gwCall(t, "PATCH", f.base, f.host, "/nowhere/at/all", nil, nil); a.status != 200 || string(a.body) != `{"caught": "/nowhere/at/all", "route": "$default"}` {
				t.Errorf("$default: %d %s", a.status, a.body)
			}
		})
	}

	restAPI := map[string]any{"protocol": "REST", "stageVariables": map[string]string{"lambdaAlias": "live"},
		"routes": []map[string]any{
			{"method": "GET", "path": "/items/{id}", "function": "gw"},
			{"method": "ANY", "path": "/{proxy+}", "function": "gw"},
			{"method": "GET", "path": "/bad", "function": "py"},
		}}
	status, out = gwManage(t, "PUT", mgmt+"shop-rest", restAPI)
	if status != 200 || out["stage"] != "Prod" {
		t.Fatalf("PUT REST API: %d %v", status, out)
	}
	rid := out["apiId"].(string)
	if out["endpoint"] != "http://"+rid+".execute-api.us-east-1.localhost:"+base.Port()+"/Prod/" {
		t.Errorf("REST endpoint: %v", out["endpoint"])
	}
	rhost := rid + ".execute-api.us-east-1.localhost:" + base.Port()
	for _, f := range []struct{ name, base, host string }{{"host", s.URL(), rhost}, {"path", s.URL() + "/execute-api/" + rid, ""}} {
		t.Run("rest-"+f.name, func(t *testing.T) {
			a := gwCall(t, "GET", f.base, f.host, "/Prod/items/7?x=1&x=2", nil, map[string]string{"X-Custom": "c"})
			if a.status != 201 || !cmp.Equal(a.header.Values("X-Multi"), []string{"one", "two"}) || a.header.Get("X-Amzn-Requestid") == "" {
				t.Fatalf("REST GET: %d %v %s", a.status, a.header, a.body)
			}
			ev := mustJSON[events.APIGatewayProxyRequest](t, a.body)
			if ev.Resource != "/items/{id}" || ev.Path != "/items/7" || ev.HTTPMethod != "GET" || ev.PathParameters["id"] != "7" ||
				ev.QueryStringParameters["x"] != "2" || !cmp.Equal(ev.MultiValueQueryStringParameters["x"], []string{"1", "2"}) ||
				ev.Headers["X-Custom"] != "c" || ev.StageVariables["lambdaAlias"] != "live" || ev.Body != "" ||
				ev.RequestContext.Stage != "Prod" || ev.RequestContext.Path != "/Prod/items/7" || ev.RequestContext.ResourcePath != "/items/{id}" ||
				ev.RequestContext.HTTPMethod != "GET" || ev.RequestContext.APIID != rid || ev.RequestContext.Identity.SourceIP != "127.0.0.1" ||
				ev.RequestContext.RequestID != a.header.Get("X-Amzn-Requestid") {
				t.Errorf("REST event: %s", a.body)
			}
			a = gwCall(t, "POST", f.base, f.host, "/Prod/deep/er/path", []byte{0xff, 0}, map[string]string{"Content-Type": "image/png"})
			if ev := mustJSON[events.APIGatewayProxyRequest](t, a.body); a.status != 201 || ev.Resource != "/{proxy+}" ||
				ev.PathParameters["proxy"] != "deep/er/path" || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) {
				t.Errorf("REST greedy: %d %s", a.status, a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/Prod/x?bin=1", nil, nil); a.status != 200 || !bytes.Equal(a.body, []byte{0, 1, 2, 255}) {
				t.Errorf("REST binary answer: %d %q", a.status, a.body)
			}
			// A REST API's answers of its own.
			if a := gwCall(t, "GET", f.base, f.host, "/Prod/", nil, nil); a.status != 403 || string(a.body) != `{"message":"Missing Authentication Token"}` {
				t.Errorf("no route: %d %s", a.status, a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/Beta/items/7", nil, nil); a.status != 403 || string(a.body) != `{"message":"Forbidden"}` {
				t.Errorf("unknown stage: %d %s", a.status, a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/Prod/bad", nil, nil); a.status != 502 || string(a.body) != `{"message":"Internal server error"}` {
				t.Errorf("malformed proxy answer: %d %s", a.status, a.body)
			}
			if a := gwCall(t, "GET", f.base, f.host, "/Prod/x/fail", nil, nil); a.status != 502 || string(a.body) != `{"message":"Internal server error"}` {
				t.Errorf("REST failing function: %d %s", a.status, a.body)
			}
		})
	}

	// The body is bounded before it is read: 10 MB, as API Gateway.
	big := gwCall(t, "PUT", s.URL()+"/execute-api/"+id, "", "/files/big", make([]byte, 10<<20+1), map[string]string{"Content-Type": "application/octet-stream"})
	if big.status != 413 || string(big.body) != `{"message":"Request Too Long"}` {
		t.Errorf("oversize request: %d %s", big.status, big.body)
	}

	// Replacing an API swaps its routes at once and keeps its apiId.
	replaced := map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "GET", "path": "/v2/{thing}", "function": "gw"}}}
	status, out = gwManage(t, "PUT", mgmt+"shop-http", replaced)
	if status != 200 || out["apiId"] != id || len(out["routes"].([]any)) != 1 {
		t.Fatalf("replace: %d %v", status, out)
	}
	if a := gwCall(t, "GET", s.URL(), host, "/items/42", nil, nil); a.status != 404 || string(a.body) != `{"message":"Not Found"}` {
		t.Errorf("old route after the replacement: %d %s", a.status, a.body)
	}
	if a := gwCall(t, "GET", s.URL(), host, "/v2/x", nil, nil); a.status != 200 || a.header.Get("X-Route") != "GET /v2/{thing}" {
		t.Errorf("new route: %d %s", a.status, a.body)
	}
	if ev := mustJSON[events.APIGatewayV2HTTPRequest](t, gwCall(t, "GET", s.URL(), host, "/v2/x", nil, nil).body); ev.StageVariables != nil {
		t.Errorf("the replacement has no stage variables: %v", ev.StageVariables)
	}

	// Every rejection leaves the stored API as it was.
	_, before := gwManage(t, "GET", mgmt+"shop-http", nil)
	oversize := append([]byte(`{"protocol":"HTTP","routes":[],"tags":{"pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	oversize = append(oversize, `"}}`...)
	for _, tc := range []struct {
		name, api string
		body      any
		status    int
		code      string
	}{
		{"bad name", "bad name!", replaced, 400, "ValidationException"},
		{"bad protocol", "shop-http", map[string]any{"protocol": "SOAP", "routes": []any{}}, 400, "ValidationException"},
		{"bad method", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "FETCH", "path": "/a", "function": "gw"}}}, 400, "ValidationException"},
		{"bad path", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "GET", "path": "a", "function": "gw"}}}, 400, "ValidationException"},
		{"greedy not last", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "GET", "path": "/{p+}/b", "function": "gw"}}}, 400, "ValidationException"},
		{"$default on REST", "shop-http", map[string]any{"protocol": "REST", "routes": []map[string]any{{"method": "ANY", "path": "$default", "function": "gw"}}}, 400, "ValidationException"},
		{"duplicate route", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{
			{"method": "GET", "path": "/a/{id}", "function": "gw"}, {"method": "GET", "path": "/a/{key}", "function": "py"}}}, 400, "ValidationException"},
		{"bad payload format", "shop-http", map[string]any{"protocol": "REST", "routes": []map[string]any{{"method": "GET", "path": "/a", "function": "gw", "payloadFormatVersion": "2.0"}}}, 400, "ValidationException"},
		{"unknown function", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "GET", "path": "/a", "function": "nope"}}}, 404, "ResourceNotFoundException"},
		{"unknown alias", "shop-http", map[string]any{"protocol": "HTTP", "routes": []map[string]any{{"method": "GET", "path": "/a", "function": "gw", "qualifier": "missing"}}}, 404, "ResourceNotFoundException"},
		{"oversize body", "shop-http", oversize, 413, "RequestEntityTooLargeException"},
		{"not JSON", "shop-http", []byte("{"), 400, "InvalidRequestContentException"},
	} {
		status, out := gwManage(t, "PUT", mgmt+url.PathEscape(tc.api), tc.body)
		if status != tc.status || out["__type"] != tc.code || out["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, out, tc.status, tc.code)
		}
	}
	if _, after := gwManage(t, "GET", mgmt+"shop-http", nil); !cmp.Equal(before, after) {
		t.Errorf("rejected requests changed the API:\n%s", cmp.Diff(before, after))
	}
	if a := gwCall(t, "GET", s.URL(), host, "/v2/x", nil, nil); a.status != 200 {
		t.Errorf("the API after the rejections: %d %s", a.status, a.body)
	}

	// List (by name), get, delete.
	status, out = gwManage(t, "GET", strings.TrimSuffix(mgmt, "/"), nil)
	if apis, _ := out["apis"].([]any); status != 200 || len(apis) != 2 || apis[0].(map[string]any)["name"] != "shop-http" || apis[1].(map[string]any)["name"] != "shop-rest" {
		t.Errorf("list: %d %v", status, out)
	}
	if status, out := gwManage(t, "GET", mgmt+"nope", nil); status != 404 || out["__type"] != "ResourceNotFoundException" {
		t.Errorf("get unknown: %d %v", status, out)
	}
	if status, _ := gwManage(t, "DELETE", mgmt+"shop-rest", nil); status != 204 {
		t.Errorf("delete: %d", status)
	}
	if a := gwCall(t, "GET", s.URL(), rhost, "/Prod/items/7", nil, nil); a.status != 403 || string(a.body) != `{"message":"Forbidden"}` {
		t.Errorf("a deleted API: %d %s", a.status, a.body)
	}
	if status, out := gwManage(t, "DELETE", mgmt+"shop-rest", nil); status != 404 || out["__type"] != "ResourceNotFoundException" {
		t.Errorf("delete again: %d %v", status, out)
	}
	// Put again after deletion: a new API, a new apiId.
	if status, out := gwManage(t, "PUT", mgmt+"shop-rest", restAPI); status != 200 || out["apiId"] == rid {
		t.Errorf("recreate: %d %v", status, out)
	}
}

// TestAPIGatewayAuth: with access keys, the management API wants a SigV4 signature (service
// lambda) covering its body, while the API's routes stay public.
func TestAPIGatewayAuth(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	c := clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey)
	createFunction(t, c, "py", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: gwPython}}))
	body := []byte(`{"protocol":"HTTP","routes":[{"method":"GET","path":"/plain","function":"py"}]}`)
	mgmt := s.URL() + "/flint/v1/apis/open"

	if status, code, b := signed(t, "PUT", mgmt, "", "", body, time.Now(), nil); status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned PUT: %d %s %s", status, code, b)
	}
	if status, code, b := signed(t, "PUT", mgmt, key.AccessKeyID, key.SecretAccessKey, body, time.Now(), func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte("/plain"), []byte("/other"), 1)))
	}); status != 403 || code != "InvalidSignatureException" {
		t.Errorf("changed body: %d %s %s", status, code, b)
	}
	if status, code, _ := signed(t, "GET", s.URL()+"/flint/v1/apis", "", "", nil, time.Now(), nil); status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned list: %d %s", status, code)
	}
	status, _, b := signed(t, "PUT", mgmt, key.AccessKeyID, key.SecretAccessKey, body, time.Now(), nil)
	if status != 200 {
		t.Fatalf("signed PUT: %d %s", status, b)
	}
	out := mustJSON[map[string]any](t, b)
	if a := gwCall(t, "GET", s.URL()+"/execute-api/"+out["apiId"].(string), "", "/plain", nil, nil); a.status != 200 || string(a.body) != `{"hello": "world"}` {
		t.Errorf("the public route: %d %s", a.status, a.body)
	}
	if status, code, _ := signed(t, "DELETE", mgmt, "", "", nil, time.Now(), nil); status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned DELETE: %d %s", status, code)
	}
	if status, _, b := signed(t, "DELETE", mgmt, key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil); status != 204 {
		t.Errorf("signed DELETE: %d %s", status, b)
	}
}

// TestAPIGatewayIntegrationFailures: a throttled function, a deleted one and one slower than the
// route's integration timeout get API Gateway's answers, worded per protocol.
func TestAPIGatewayIntegrationFailures(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	slow := "import time\ndef handler(event, context):\n    time.sleep(3)\n    return {\"statusCode\": 200, \"body\": \"late\"}\n"
	createFunction(t, c, "limited", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: gwPython}}))
	createFunction(t, c, "doomed", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: gwPython}}))
	createFunction(t, c, "slow", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: slow}}))
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	routes := []map[string]any{
		{"method": "GET", "path": "/limited", "function": "limited"},
		{"method": "GET", "path": "/doomed", "function": "doomed"},
		{"method": "GET", "path": "/slow", "function": "slow", "timeoutInMillis": 300},
	}
	ids := map[string]string{}
	for _, protocol := range []string{"HTTP", "REST"} {
		status, out := gwManage(t, "PUT", s.URL()+"/flint/v1/apis/failures-"+protocol, map[string]any{"protocol": protocol, "routes": routes})
		if status != 200 {
			t.Fatalf("PUT %s: %d %v", protocol, status, out)
		}
		ids[protocol] = out["apiId"].(string)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("doomed")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		protocol, path string
		status         int
		body           string
	}{
		{"HTTP", "/limited", 429, `{"message":"Too Many Requests"}`},
		{"REST", "/Prod/limited", 500, `{"message":"Internal server error"}`},
		{"HTTP", "/doomed", 500, `{"message":"Internal server error"}`},
		{"REST", "/Prod/doomed", 500, `{"message":"Internal server error"}`},
		{"HTTP", "/slow", 503, `{"message":"Service Unavailable"}`},
		{"REST", "/Prod/slow", 504, `{"message":"Endpoint request timed out"}`},
	} {
		a := gwCall(t, "GET", s.URL()+"/execute-api/"+ids[tc.protocol], "", tc.path, nil, nil)
		if a.status != tc.status || string(a.body) != tc.body {
			t.Errorf("%s %s: %d %s, want %d %s", tc.protocol, tc.path, a.status, a.body, tc.status, tc.body)
		}
	}
	if status, out := gwManage(t, "PUT", s.URL()+"/flint/v1/apis/failures-REST", map[string]any{"protocol": "REST",
		"routes": []map[string]any{{"method": "GET", "path": "/slow", "function": "slow", "timeoutInMillis": 29001}}}); status != 400 || out["__type"] != "ValidationException" {
		t.Errorf("a REST timeout over 29 s: %d %v", status, out)
	}
}
