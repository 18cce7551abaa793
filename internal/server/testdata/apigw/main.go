// Command apigw is a test function built with aws-lambda-go: it decodes an API Gateway event
// into aws-lambda-go's own types (REST/1.0 events.APIGatewayProxyRequest, HTTP API 2.0
// events.APIGatewayV2HTTPRequest) and answers with the matching response type, its body the
// decoded event, so a test sees what the library read. A path ending in /fail fails; a query
// bin=1 answers a base64 binary body.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(raw, &probe)
	if probe.Version == "2.0" {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		if strings.HasSuffix(ev.RawPath, "/fail") {
			return nil, errors.New("asked to fail")
		}
		if ev.QueryStringParameters["bin"] == "1" {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"},
				Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true}, nil
		}
		body, _ := json.Marshal(ev)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(body), Cookies: []string{"a=1; Path=/", "b=2"},
			Headers: map[string]string{"Content-Type": "application/json", "X-Route": ev.RouteKey}}, nil
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	if strings.HasSuffix(ev.Path, "/fail") {
		return nil, errors.New("asked to fail")
	}
	if ev.QueryStringParameters["bin"] == "1" {
		return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "image/png"},
			Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true}, nil
	}
	body, _ := json.Marshal(struct {
		events.APIGatewayProxyRequest
		Version string `json:"version"`
	}{ev, probe.Version})
	return events.APIGatewayProxyResponse{StatusCode: 201, Body: string(body),
		Headers:           map[string]string{"Content-Type": "application/json", "X-Single": "s"},
		MultiValueHeaders: map[string][]string{"X-Multi": {"one", "two"}}}, nil
}

func main() { lambda.Start(handle) }
