package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
)

// Response is the HTTP answer a function's result makes: status, headers and body.
type Response struct {
	Status  int
	Headers http.Header
	Body    []byte
}

// ParseV2Response applies payload format 2.0's rules (HTTP APIs and function URLs) to a
// function's result: a JSON object with statusCode is an HTTP response (headers, cookies, body,
// isBase64Encoded; multiValueHeaders are taken too); any other valid JSON is a 200
// application/json body as returned.
func ParseV2Response(payload []byte) Response {
	out := Response{Status: http.StatusOK, Headers: http.Header{}}
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

// ErrMalformed is a payload format 1.0 result API Gateway cannot read ("Malformed Lambda proxy
// response"): the caller gets a 502.
var ErrMalformed = errors.New("malformed Lambda proxy response")

// ParseV1Response applies payload format 1.0's rules (REST APIs, HTTP APIs' 1.0 routes): the
// result must be a JSON object with a numeric statusCode and, if present, string headers,
// string-list multiValueHeaders and a string body. Both header maps are merged; a name in
// multiValueHeaders takes its values from there.
func ParseV1Response(payload []byte) (Response, error) {
	var shaped struct {
		StatusCode        *int                `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              *string             `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if !bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		return Response{}, ErrMalformed
	}
	if err := json.Unmarshal(payload, &shaped); err != nil || shaped.StatusCode == nil || *shaped.StatusCode < 100 || *shaped.StatusCode > 599 {
		return Response{}, ErrMalformed
	}
	out := Response{Status: *shaped.StatusCode, Headers: http.Header{}}
	for k, v := range shaped.Headers {
		out.Headers.Set(k, v)
	}
	for k, vs := range shaped.MultiValueHeaders {
		out.Headers.Del(k)
		for _, v := range vs {
			out.Headers.Add(k, v)
		}
	}
	if shaped.Body != nil {
		out.Body = []byte(*shaped.Body)
		if shaped.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*shaped.Body)
			if err != nil {
				return Response{}, ErrMalformed
			}
			out.Body = b
		}
	}
	if out.Headers.Get("Content-Type") == "" {
		out.Headers.Set("Content-Type", "application/json")
	}
	return out, nil
}
