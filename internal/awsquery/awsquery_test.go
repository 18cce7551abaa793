package awsquery

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWrappedForm reads the wrapped layout (SNS's: member lists, entry maps, nested), as the
// sns SDK's request snapshots send it.
func TestWrappedForm(t *testing.T) {
	form, _ := url.ParseQuery("Action=PublishBatch&Version=2010-03-31&TopicArn=arn" +
		"&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m" +
		"&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=k" +
		"&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=String" +
		"&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=v" +
		"&PublishBatchRequestEntries.member.2.Id=b&PublishBatchRequestEntries.member.2.Message=n" +
		"&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Tags.member.1.Key=t&Tags.member.1.Value=u")
	doc, err := (&Spec{}).Document(form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	want := `{"Attributes":{"FifoTopic":"true"},"PublishBatchRequestEntries":[{"Id":"a","Message":"m","MessageAttributes":{"k":{"DataType":"String","StringValue":"v"}}},{"Id":"b","Message":"n"}],"Tags":[{"Key":"t","Value":"u"}],"TopicArn":"arn"}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
}

// TestWrappedAnswer renders wrapped lists and maps as the sns SDK's response snapshots have them.
func TestWrappedAnswer(t *testing.T) {
	s := &Spec{Namespace: "ns", WrappedMaps: map[string]bool{"Attributes": true}}
	w := httptest.NewRecorder()
	s.Write(w, "ListTopics", map[string]any{"Topics": []map[string]string{{"TopicArn": "a"}, {"TopicArn": "b"}},
		"Attributes": map[string]string{"k": "v<"}}, "rid")
	want := `<?xml version="1.0"?><ListTopicsResponse xmlns="ns"><ListTopicsResult><Attributes><entry><key>k</key><value>v&lt;</value></entry></Attributes>` +
		`<Topics><member><TopicArn>a</TopicArn></member><member><TopicArn>b</TopicArn></member></Topics></ListTopicsResult>` +
		`<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ListTopicsResponse>`
	if diff := cmp.Diff(want, w.Body.String()); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

// TestResultElement: an answer has its <OpResult> whenever the operation has an output shape,
// even with every member left out (a ReceiveMessage that got nothing, SNS's TagResource), for
// botocore fails on an answer without it; an operation without one (nil, struct{}{}) has none.
func TestResultElement(t *testing.T) {
	type receiveOutput struct {
		Messages []string `json:"Messages,omitempty"`
	}
	s := &Spec{Namespace: "ns", Flat: true, XMLLists: map[string]string{"Messages": "Message"}}
	for _, tc := range []struct {
		name string
		out  any
		want string
	}{
		{"empty members", &receiveOutput{}, `<ReceiveMessageResult></ReceiveMessageResult>`},
		{"Empty", Empty{}, `<ReceiveMessageResult></ReceiveMessageResult>`},
		{"members", &receiveOutput{Messages: []string{"m"}}, `<ReceiveMessageResult><Message>m</Message></ReceiveMessageResult>`},
		{"no output shape: struct{}{}", struct{}{}, ``},
		{"no output shape: nil", nil, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.Write(w, "ReceiveMessage", tc.out, "rid")
			want := `<?xml version="1.0"?><ReceiveMessageResponse xmlns="ns">` + tc.want +
				`<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ReceiveMessageResponse>`
			if diff := cmp.Diff(want, w.Body.String()); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
