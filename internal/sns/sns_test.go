package sns

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func ptr(s string) *string { return &s }

// TestFilterPolicyScope matches one policy against the attributes (the default) and against
// the body (FilterPolicyScope MessageBody), where a body that is no JSON object never matches.
func TestFilterPolicyScope(t *testing.T) {
	attrs := map[string]attributeValue{
		"color": {DataType: "String", StringValue: ptr("red")},
		"size":  {DataType: "Number", StringValue: ptr("12")},
		"tags":  {DataType: "String.Array", StringValue: ptr(`["a","b"]`)},
		"blob":  {DataType: "Binary", BinaryValue: []byte("red")},
	}
	for _, c := range []struct {
		policy, scope, body string
		want                bool
	}{
		{`{"color":["red"]}`, "", "x", true},
		{`{"color":["blue"]}`, "", "x", false},
		{`{"size":[{"numeric":[">",10,"<=",12]}]}`, "", "x", true},
		{`{"size":[{"numeric":[">",12]}]}`, "", "x", false},
		{`{"tags":["b"]}`, "", "x", true},
		{`{"blob":[{"exists":true}]}`, "", "x", false}, // Binary attributes are not matched
		{`{"color":[{"prefix":"r"}],"missing":[{"exists":false}]}`, "MessageAttributes", "x", true},
		{`{"color":["red"]}`, "MessageBody", `{"color":"blue"}`, false},
		{`{"color":["blue"]}`, "MessageBody", `{"color":"blue"}`, true},
		{`{"order":{"total":[{"numeric":[">=",100]}]}}`, "MessageBody", `{"order":{"total":150}}`, true},
		{`{"color":["blue"]}`, "MessageBody", `not json`, false},
		{`{"color":["blue"]}`, "MessageBody", `["color"]`, false},
	} {
		sub := &subscription{Attributes: map[string]string{"FilterPolicy": c.policy}}
		if c.scope != "" {
			sub.Attributes["FilterPolicyScope"] = c.scope
		}
		if got := matches(sub, c.body, attrs); got != c.want {
			t.Errorf("policy %s scope %q body %q: %v, want %v", c.policy, c.scope, c.body, got, c.want)
		}
	}
	if !matches(&subscription{}, "x", nil) {
		t.Error("no policy must match everything")
	}
}

// TestEnvelopeShapes checks the two spellings of a notification: the http/sqs envelope
// (SigningCertURL, UnsubscribeURL, Subject left out when absent) and Lambda's record (…Url,
// Subject null), with AWS's member names.
func TestEnvelopeShapes(t *testing.T) {
	s := New(Config{})
	tp := &topic{Name: "t", Arn: "arn:aws:sns:us-east-1:000000000000:t"}
	sub := &subscription{Arn: tp.Arn + ":00000000-0000-0000-0000-000000000000"}
	m := &message{id: "mid", topic: tp, body: "b", time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		attrs: map[string]attributeValue{"k": {DataType: "String", StringValue: ptr("v")}, "bin": {DataType: "Binary", BinaryValue: []byte{0, 1}}}}
	e, err := s.envelope(&call{base: "http://h"}, m, sub, "b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(e)
	var got map[string]any
	_ = json.Unmarshal(b, &got)
	for _, k := range []string{"Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL", "MessageAttributes"} {
		if _, ok := got[k]; !ok {
			t.Errorf("envelope lacks %s: %s", k, b)
		}
	}
	if _, ok := got["Subject"]; ok {
		t.Errorf("envelope has a Subject the message has not: %s", b)
	}
	if got["Timestamp"] != "2026-01-02T03:04:05.006Z" {
		t.Errorf("Timestamp %v", got["Timestamp"])
	}
	if a := got["MessageAttributes"].(map[string]any); a["bin"].(map[string]any)["Value"] != "AAE=" || a["k"].(map[string]any)["Type"] != "String" {
		t.Errorf("attributes %v", a)
	}
	lb, _ := encode(lambdaEvent(e, sub.Arn))
	want := `{"Records":[{"EventSource":"aws:sns","EventVersion":"1.0","EventSubscriptionArn":"` + sub.Arn + `","Sns":{"Type":"Notification","MessageId":"mid","TopicArn":"` + tp.Arn +
		`","Subject":null,"Message":"b","Timestamp":"2026-01-02T03:04:05.006Z","SignatureVersion":"1","Signature":"","SigningCertUrl":"","UnsubscribeUrl":"` + e.UnsubscribeURL +
		`","MessageAttributes":{"bin":{"Type":"Binary","Value":"AAE="},"k":{"Type":"String","Value":"v"}}}}]}`
	if string(lb) != want {
		t.Errorf("lambda event\n got %s\nwant %s", lb, want)
	}
}

// TestIsSNSRequest tells SNS calls from SQS's (which share form POSTs to /) and puts an
// unsigned body back for whoever reads it next.
func TestIsSNSRequest(t *testing.T) {
	form := func(body, auth string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{form("Action=Publish&Version=2010-03-31", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x"), true},
		{form("Action=SendMessage", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"), false},
		{form("Action=Publish&Version=2010-03-31", ""), true},
		{form("Action=SendMessage&QueueUrl=x", ""), false},
		{httptest.NewRequest("GET", "/?Action=ListTopics", nil), true},
		{httptest.NewRequest("GET", "/?Action=ListQueues", nil), false},
	} {
		if got := IsSNSRequest(c.r); got != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.r.Method, c.r.URL, c.r.Header.Get("Authorization"), got, c.want)
		}
		if c.r.Method == "POST" {
			b, _ := io.ReadAll(c.r.Body)
			body := string(b)
			if _, err := url.ParseQuery(body); err != nil || !strings.HasPrefix(body, "Action=") {
				t.Errorf("body after IsSNSRequest: %q", body)
			}
		}
	}
}
