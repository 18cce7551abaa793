package sns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStringToSign: the canonical forms of AWS's documented examples.
func TestStringToSign(t *testing.T) {
	subject := "My subject"
	n := &envelope{Type: "Notification", Message: "My Test Message", MessageId: "4d4dc071-ddbf-465d-bba8-08f81c89da64", Subject: &subject,
		Timestamp: "2019-01-31T04:37:04.321Z", TopicArn: "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
		UnsubscribeURL: "not signed", SequenceNumber: "not signed"}
	want := "Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\nSubject\nMy subject\n" +
		"Timestamp\n2019-01-31T04:37:04.321Z\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nNotification\n"
	if diff := cmp.Diff(want, stringToSign(n)); diff != "" {
		t.Errorf("Notification (-want +got):\n%s", diff)
	}
	n.Subject = nil
	if got := stringToSign(n); strings.Contains(got, "Subject") {
		t.Errorf("a Notification without a subject signs %q", got)
	}
	c := &envelope{Type: "SubscriptionConfirmation", Message: "My Test Message", MessageId: "3d891288-136d-417f-bc05-901c108273ee",
		SubscribeURL: "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233", Timestamp: "2019-01-31T19:25:13.719Z",
		Token: "233", TopicArn: "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P"}
	want = "Message\nMy Test Message\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\n" +
		"SubscribeURL\nhttps://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&Token=233\nTimestamp\n2019-01-31T19:25:13.719Z\n" +
		"Token\n233\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nSubscriptionConfirmation\n"
	if diff := cmp.Diff(want, stringToSign(c)); diff != "" {
		t.Errorf("SubscriptionConfirmation (-want +got):\n%s", diff)
	}
}

// TestSignerKeptAndRefused: the key is made on first use, not at load; a new Signer on the same
// directory signs with it; a key without its certificate, or a certificate of another key, is
// refused rather than replaced.
func TestSignerKeptAndRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sns")
	g, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, signingKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("LoadSigner made a key before one was needed: %v", err)
	}
	e := &envelope{Type: "Notification", Message: "m", MessageId: "id", Timestamp: "t", TopicArn: "arn"}
	if err := g.sign(e, "2", "http://h"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, signingKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	e2 := *e
	if err := again.sign(&e2, "2", "http://h"); err != nil {
		t.Fatal(err)
	}
	if e2.Signature != e.Signature || e2.SigningCertURL != e.SigningCertURL || !strings.HasPrefix(e.SigningCertURL, "http://h/SimpleNotificationService-") {
		t.Errorf("reloaded signer: %s %s, first %s %s", e2.Signature, e2.SigningCertURL, e.Signature, e.SigningCertURL)
	}

	other := filepath.Join(t.TempDir(), "sns")
	g2, _ := LoadSigner(other)
	if err := g2.sign(&envelope{Type: "Notification"}, "1", "http://h"); err != nil {
		t.Fatal(err)
	}
	cert, _ := os.ReadFile(filepath.Join(other, signingCertFile))
	if err := os.WriteFile(filepath.Join(dir, signingCertFile), cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(dir); err == nil || !strings.Contains(err.Error(), "does not hold the key") {
		t.Errorf("a certificate of another key: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, signingCertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(dir); err == nil {
		t.Error("a key without its certificate was accepted")
	}
}
