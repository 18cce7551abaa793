package sqs

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func str(s string) *string { return &s }

// TestAttributesMD5 checks MD5OfMessageAttributes against the values AWS's own SDK tests (the
// "Amazon sample" vectors) and AWS-checked clients publish for its documented algorithm.
func TestAttributesMD5(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]AttributeValue
		want  string
	}{
		{"none", nil, ""},
		{"amazon sample, strings", map[string]AttributeValue{
			"test_attribute_name_2": {DataType: "String", StringValue: str("test_attribute_value_2")},
			"test_attribute_name_1": {DataType: "String", StringValue: str("test_attribute_value_1")},
		}, "d53f3b558fe951154770f25cb63dbba9"},
		{"amazon sample, binary", map[string]AttributeValue{
			"test_attribute_name": {DataType: "Binary", BinaryValue: []byte("test_attribute_value")},
		}, "23f6bd27ea87aab7dfeadcc9aebee495"},
		{"one string", map[string]AttributeValue{
			"SellerName": {DataType: "String", StringValue: str("Example Store")},
		}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{"number and string", map[string]AttributeValue{
			"ordinal":  {DataType: "Number", StringValue: str("1")},
			"category": {DataType: "String", StringValue: str("test")},
		}, "d21ae90c49061e927f57df5f5d72be1f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AttributesMD5(tc.attrs); got != tc.want {
				t.Errorf("AttributesMD5 = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFormDocument: the query protocol's flattened form becomes the same input document the
// JSON protocol sends, so one decoder serves both.
func TestFormDocument(t *testing.T) {
	for _, tc := range []struct {
		name, form string
		want       string
	}{
		{"create queue", "Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Attribute.2.Name=DelaySeconds&Attribute.2.Value=0&Tag.1.Key=team&Tag.1.Value=a",
			`{"Attributes":{"DelaySeconds":"0","VisibilityTimeout":"5"},"QueueName":"q","tags":{"team":"a"}}`},
		{"send message", "Action=SendMessage&QueueUrl=u&MessageBody=hi&DelaySeconds=3&MessageAttribute.1.Name=k&MessageAttribute.1.Value.StringValue=v&MessageAttribute.1.Value.DataType=String&MessageAttribute.2.Name=b&MessageAttribute.2.Value.BinaryValue=AAE%3D&MessageAttribute.2.Value.DataType=Binary",
			`{"DelaySeconds":"3","MessageAttributes":{"b":{"BinaryValue":"AAE=","DataType":"Binary"},"k":{"DataType":"String","StringValue":"v"}},"MessageBody":"hi","QueueUrl":"u"}`},
		{"receive", "Action=ReceiveMessage&QueueUrl=u&AttributeName.1=All&MessageAttributeName.1=a&MessageAttributeName.2=b&MaxNumberOfMessages=10",
			`{"AttributeNames":["All"],"MaxNumberOfMessages":"10","MessageAttributeNames":["a","b"],"QueueUrl":"u"}`},
		{"batch, ordered by index", "Action=SendMessageBatch&QueueUrl=u&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two&SendMessageBatchRequestEntry.10.Id=c&SendMessageBatchRequestEntry.10.MessageBody=ten&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v",
			`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"String","StringValue":"v"}},"MessageBody":"one"},{"Id":"b","MessageBody":"two"},{"Id":"c","MessageBody":"ten"}],"QueueUrl":"u"}`},
		{"untag", "Action=UntagQueue&QueueUrl=u&TagKey.1=x&TagKey.2=y", `{"QueueUrl":"u","TagKeys":["x","y"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form, err := url.ParseQuery(tc.form)
			if err != nil {
				t.Fatal(err)
			}
			b, err := formDocument(form)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			_ = json.Unmarshal(b, &got)
			_ = json.Unmarshal([]byte(tc.want), &want)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("document (-want +got):\n%s", d)
			}
		})
	}
	// Decoded through the JSON protocol's types: numbers as strings are numbers.
	form, _ := url.ParseQuery("QueueUrl=u&MaxNumberOfMessages=7&WaitTimeSeconds=x")
	b, _ := formDocument(form)
	var in receiveMessageInput
	if err := json.Unmarshal(b, &in); err == nil {
		t.Errorf("WaitTimeSeconds=x decoded without an error: %+v", in)
	}
}

// TestXMLAnswer: lists and maps are flattened as the query protocol's XML has them.
func TestXMLAnswer(t *testing.T) {
	w := httptest.NewRecorder()
	writeXML(w, "ReceiveMessage", &receiveMessageOutput{Messages: []Message{{MessageId: "m", ReceiptHandle: "r", MD5OfBody: "x", Body: "a<b",
		Attributes: map[string]string{"SentTimestamp": "1"}, MessageAttributes: map[string]AttributeValue{"k": {DataType: "String", StringValue: str("v")}}}}}, "rid")
	want := `<?xml version="1.0"?><ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult><Message>` +
		`<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute><Body>a&lt;b</Body><MD5OfBody>x</MD5OfBody>` +
		`<MessageAttribute><Name>k</Name><Value><DataType>String</DataType><StringValue>v</StringValue></Value></MessageAttribute>` +
		`<MessageId>m</MessageId><ReceiptHandle>r</ReceiptHandle></Message></ReceiveMessageResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ReceiveMessageResponse>`
	if got := w.Body.String(); got != want {
		t.Errorf("XML\n got %s\nwant %s", got, want)
	}
	w = httptest.NewRecorder()
	writeXML(w, "DeleteMessageBatch", &batchOutput{Successful: []batchID{{Id: "a"}}, Failed: []batchError{{Id: "b", Code: "ReceiptHandleIsInvalid", SenderFault: true}}}, "rid")
	for _, part := range []string{"<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>",
		"<BatchResultErrorEntry><Code>ReceiptHandleIsInvalid</Code><Id>b</Id><SenderFault>true</SenderFault></BatchResultErrorEntry>"} {
		if !strings.Contains(w.Body.String(), part) {
			t.Errorf("XML %s lacks %s", w.Body.String(), part)
		}
	}
}

// TestIsSQSRequest: SQS calls are told from Lambda's (and the other APIs') on the one endpoint.
func TestIsSQSRequest(t *testing.T) {
	req := func(method, path, ctype, auth, target string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		return r
	}
	const form = "application/x-www-form-urlencoded; charset=utf-8"
	sqsAuth := "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00"
	lambdaAuth := "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00"
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"json 1.0", req("POST", "/", "application/x-amz-json-1.0", sqsAuth, "AmazonSQS.SendMessage"), true},
		{"query, signed", req("POST", "/", form, sqsAuth, ""), true},
		{"query to a queue url, signed", req("POST", "/000000000000/q", form, sqsAuth, ""), true},
		{"query, unsigned", req("POST", "/", form, "", ""), true},
		{"query to a queue url, unsigned", req("POST", "/000000000000/q.fifo", form, "", ""), true},
		{"GET with Action", req("GET", "/?Action=ListQueues", "", "", ""), true},
		{"lambda invoke", req("POST", "/2015-03-31/functions/f/invocations", "application/json", lambdaAuth, ""), false},
		{"lambda, unsigned", req("POST", "/2015-03-31/functions/f/invocations", "", "", ""), false},
		{"secrets manager", req("POST", "/", "application/x-amz-json-1.1", "", "secretsmanager.GetSecretValue"), false},
		{"other Action", req("GET", "/?Action=Publish", "", "", ""), false},
		{"form POST elsewhere", req("POST", "/2015-03-31/functions", form, "", ""), false},
	} {
		if got := IsSQSRequest(tc.r); got != tc.want {
			t.Errorf("%s: IsSQSRequest = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAckSubject: a receipt handle acts only on a delivery of its own queue's shared consumer,
// and nothing but an ACK subject goes out.
func TestAckSubject(t *testing.T) {
	q := &queue{Name: "orders"}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	good := "$JS.ACK.orders.sqs.1.5.5.1765000000000000000.0"
	if got, err := ackSubject(q, enc(good)); err != nil || got != good {
		t.Errorf("ackSubject(good) = %q, %v", got, err)
	}
	for _, bad := range []string{"not base64 !", enc("$JS.ACK.other.sqs.1.5.5.1.0"), enc("$JS.ACK.orders.esm-x.1.5.5.1.0"),
		enc("$JS.ACK.orders.sqs.1.5.5.1.0 extra"), enc("$JS.ACK.orders.sqs.1.*.5.1.0"), enc("$JS.ACK.orders.sqs.>"),
		enc("$JS.ACK.orders.sqs.1.5.5.1.0\r\nPUB x 1"), enc("$JS.API.STREAM.DELETE.orders"), enc("$JS.ACK.orders.sqs.a.5.5.1.0")} {
		if _, err := ackSubject(q, bad); err == nil || asError(err).Code != "ReceiptHandleIsInvalid" {
			t.Errorf("ackSubject(%q) = %v, want ReceiptHandleIsInvalid", bad, err)
		}
	}
}
