package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const urlFunction = `import json
def handler(event, context):
    if event["rawPath"] == "/fail":
        raise ValueError("nope")
    if event["rawPath"] == "/plain":
        return {"just": "json"}
    return {"statusCode": 201, "headers": {"X-Custom": "yes", "Content-Type": "application/json"},
            "cookies": ["session=abc; Path=/", "theme=dark"],
            "body": json.dumps({"method": event["requestContext"]["http"]["method"], "path": event["rawPath"],
                                "query": event["rawQueryString"], "params": event.get("queryStringParameters"),
                                "body": event.get("body"), "b64": event["isBase64Encoded"],
                                "cookies": event.get("cookies"), "ua": event["headers"].get("user-agent"),
                                "version": event["version"]})}
`

func TestFunctionURL(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "web", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: urlFunction}}))
	cfg, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone,
		Cors: &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"content-type"}, MaxAge: aws.Int32(60)}})
	if err != nil {
		t.Fatal(err)
	}
	fu, err := url.Parse(aws.ToString(cfg.FunctionUrl))
	if err != nil || !strings.HasSuffix(fu.Hostname(), ".lambda-url.us-east-1.localhost") || fu.Port() == "" {
		t.Fatalf("FunctionUrl = %s", aws.ToString(cfg.FunctionUrl))
	}
	id, _, _ := strings.Cut(fu.Hostname(), ".")
	base, _ := url.Parse(s.URL())

	// As on AWS, a NONE URL answers only once the resource policy lets anyone in.
	if resp, err := http.Get(s.URL() + "/lambda-url/" + id + "/plain"); err != nil || resp.StatusCode != 403 {
		t.Fatalf("NONE URL without a public permission: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if _, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("web")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetPolicy without a policy: %v", err)
	}
	perm, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("public"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone})
	if err != nil || !strings.Contains(aws.ToString(perm.Statement), `"lambda:FunctionUrlAuthType":"NONE"`) {
		t.Fatalf("AddPermission = %v, %v", perm, err)
	}

	// Host-based routing (as curl does for *.localhost) and the path form that needs no DNS.
	hostReq := func(method, path, body string) *http.Request {
		req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
		req.Host = fu.Host
		return req
	}
	pathReq := func(method, path, body string) *http.Request {
		req, _ := http.NewRequest(method, "http://"+base.Host+"/lambda-url/"+id+path, strings.NewReader(body))
		return req
	}
	for name, mk := range map[string]func(string, string, string) *http.Request{"host": hostReq, "path": pathReq} {
		t.Run(name, func(t *testing.T) {
			req := mk("POST", "/items/7?a=1&a=2&b=x", `{"hello":"world"}`)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Cookie", "c1=v1; c2=v2")
			req.Header.Set("User-Agent", "curl/8")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 || resp.Header.Get("X-Custom") != "yes" || len(resp.Header.Values("Set-Cookie")) != 2 || resp.Header.Get("X-Amzn-Requestid") == "" {
				t.Errorf("response %d %v", resp.StatusCode, resp.Header)
			}
			var got struct {
				Method, Path, Query, Body, UA, Version string
				Params                                 map[string]string
				B64                                    bool
				Cookies                                []string
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if got.Method != "POST" || got.Path != "/items/7" || got.Query != "a=1&a=2&b=x" || got.Params["a"] != "1,2" ||
				got.Body != `{"hello":"world"}` || got.B64 || strings.Join(got.Cookies, ";") != "c1=v1;c2=v2" || got.UA != "curl/8" || got.Version != "2.0" {
				t.Errorf("event seen by the function = %+v", got)
			}
		})
	}
	get := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, body := get(pathReq("GET", "/plain", "")); resp.StatusCode != 200 || body != `{"just": "json"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("plain JSON result: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body := get(pathReq("GET", "/fail", "")); resp.StatusCode != 502 || body != `{"Message":"Internal Server Error"}` {
		t.Errorf("function error: %d %s", resp.StatusCode, body)
	}
	pre := pathReq("OPTIONS", "/x", "")
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	if resp, _ := get(pre); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || resp.Header.Get("Access-Control-Max-Age") != "60" {
		t.Errorf("CORS preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := get(pathReq("GET", "/", "")); resp.StatusCode != 201 || !strings.Contains(body, `"path": "/"`) {
		t.Errorf("root path: %d %s", resp.StatusCode, body)
	}
	unknown, _ := http.NewRequest("GET", "http://"+base.Host+"/lambda-url/"+strings.Repeat("z", 32)+"/", nil)
	if resp, _ := get(unknown); resp.StatusCode != 403 {
		t.Errorf("unknown URL: %d", resp.StatusCode)
	}

	// AWS_IAM URLs refuse unsigned requests (auth_test.go checks signed ones).
	if _, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) { // the URL cache follows the KV watch
		resp, _ := get(pathReq("GET", "/plain", ""))
		if resp.StatusCode == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("AWS_IAM URL still answers unsigned requests: %d", resp.StatusCode)
		}
	}

	// Control-plane rejections.
	if _, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone}); apiErrorCode(err) != "ResourceConflictException" {
		t.Errorf("second URL: %v", err)
	}
	if _, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("nope")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("URL of a missing alias: %v", err)
	}
	list, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || list.FunctionUrlConfigs[0].AuthType != types.FunctionUrlAuthTypeAwsIam {
		t.Errorf("list = %+v, %v", list, err)
	}
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
}
