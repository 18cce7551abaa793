package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// verifySNSMessage checks an SNS message's signature as AWS's "Verifying the signatures of
// Amazon SNS messages" has a subscriber do it: the string to sign is "Name\nvalue\n" for the
// type's members in byte order (a Notification: Message, MessageId, Subject when present,
// Timestamp, TopicArn, Type; a Subscription- or UnsubscribeConfirmation: Message, MessageId,
// SubscribeURL, Timestamp, Token, TopicArn, Type), verified with the public key of the
// certificate at SigningCertURL (which must be on trusted, the endpoint the subscriber trusts)
// as SHA1withRSA for SignatureVersion 1 and SHA256withRSA for 2. certURLKey is the member
// naming the certificate: SigningCertURL in an envelope, SigningCertUrl in a Lambda record.
func verifySNSMessage(doc []byte, trusted, certURLKey string) error {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return err
	}
	str := func(k string) (string, bool) { v, ok := m[k].(string); return v, ok }
	var keys []string
	switch typ, _ := str("Type"); typ {
	case "Notification":
		keys = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	default:
		return fmt.Errorf("unknown Type %q", typ)
	}
	var b strings.Builder
	for _, k := range keys {
		v, ok := str(k)
		if !ok {
			if k == "Subject" {
				continue // absent, or null in a Lambda record
			}
			return fmt.Errorf("no %s", k)
		}
		b.WriteString(k + "\n" + v + "\n")
	}
	certURL, _ := str(certURLKey)
	if !strings.HasPrefix(certURL, trusted+"/") {
		return fmt.Errorf("SigningCertURL %q is not on %s", certURL, trusted)
	}
	resp, err := http.Get(certURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	pemBytes, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", certURL, resp.Status)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s is not a PEM certificate", certURL)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the certificate's key is not RSA")
	}
	sigText, _ := str("Signature")
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("Signature: %w", err)
	}
	switch v, _ := str("SignatureVersion"); v {
	case "1":
		sum := sha1.Sum([]byte(b.String()))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], sig)
	case "2":
		sum := sha256.Sum256([]byte(b.String()))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	default:
		return fmt.Errorf("SignatureVersion %q", v)
	}
}

// tamper returns doc with member k set to v.
func tamper(t *testing.T, doc []byte, k string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// TestSNSSignedMessages: what SNS delivers is signed as AWS signs it, on a server that
// requires signed API calls: the SubscriptionConfirmation and the Notification an http
// endpoint gets, the envelope an sqs subscription gets and the record a lambda subscription's
// function gets, with SignatureVersion 1 (SHA1withRSA, a topic's default) and 2
// (SHA256withRSA, the topic's SignatureVersion attribute). A verifier written from AWS's
// documented algorithm fetches the certificate, unsigned, from SigningCertURL on Flint's
// endpoint and accepts each; a tampered message is refused. The key outlives a restart.
func TestSNSSignedMessages(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")
	clients := func(url string) (*sns.Client, *sqs.Client, *lambda.Client) {
		return sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1}),
			sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1}),
			lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1})
	}
	n, q, c := clients(s.URL())
	dir := t.TempDir()
	createFunction(t, c, "sns-signed-fn", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: snsRecorder}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})

	// The http endpoint: every POST, by message type; it confirms by visiting SubscribeURL.
	posts := make(chan []byte, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- b
	}))
	defer hook.Close()
	next := func(what string) []byte {
		t.Helper()
		select {
		case b := <-posts:
			return b
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s POSTed", what)
		}
		return nil
	}

	type delivered struct{ confirmation, notification, envelope, record []byte }
	got := map[string]*delivered{}
	for _, version := range []string{"1", "2"} {
		name := "signed-v" + version
		in := &sns.CreateTopicInput{Name: aws.String(name)}
		if version == "2" {
			in.Attributes = map[string]string{"SignatureVersion": "2"}
		}
		topic, err := n.CreateTopic(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		queue := createQueue(t, q, name, nil)
		d := &delivered{}
		got[version] = d
		for _, sub := range []struct{ protocol, endpoint string }{
			{"sqs", "arn:aws:sqs:us-east-1:000000000000:" + name},
			{"lambda", "arn:aws:lambda:us-east-1:000000000000:function:sns-signed-fn"},
			{"http", hook.URL + "/" + name},
		} {
			if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String(sub.protocol), Endpoint: aws.String(sub.endpoint)}); err != nil {
				t.Fatalf("Subscribe %s: %v", sub.protocol, err)
			}
		}
		d.confirmation = next("SubscriptionConfirmation")
		var conf map[string]string
		_ = json.Unmarshal(d.confirmation, &conf)
		if conf["Type"] != "SubscriptionConfirmation" || conf["SignatureVersion"] != version {
			t.Fatalf("confirmation %s", d.confirmation)
		}
		if err := verifySNSMessage(d.confirmation, s.URL(), "SigningCertURL"); err != nil {
			t.Errorf("v%s SubscriptionConfirmation does not verify: %v\n%s", version, err, d.confirmation)
		}
		resp, err := http.Get(conf["SubscribeURL"])
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET SubscribeURL: %v %v", resp, err)
		}
		resp.Body.Close()

		pub, err := n.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("signed <" + version + "> & \"quoted\"\nline two"),
			Subject: aws.String("subject " + version)})
		if err != nil {
			t.Fatal(err)
		}
		d.notification = next("Notification")
		msgs := receive(t, q, queue, 1, 5)
		if len(msgs) != 1 {
			t.Fatalf("v%s: sqs subscription got %d messages", version, len(msgs))
		}
		d.envelope = []byte(aws.ToString(msgs[0].Body))
		recordFile := filepath.Join(dir, aws.ToString(pub.MessageId)+".json")
		waitFor(t, "the lambda subscription's event", 30*time.Second, func() bool { _, err := os.Stat(recordFile); return err == nil })
		var ev struct {
			Records []struct {
				Sns json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(readFile(t, recordFile)), &ev); err != nil || len(ev.Records) != 1 {
			t.Fatalf("lambda event: %v %s", err, readFile(t, recordFile))
		}
		d.record = ev.Records[0].Sns
		for what, doc := range map[string][]byte{"http Notification": d.notification, "sqs envelope": d.envelope} {
			var e map[string]any
			_ = json.Unmarshal(doc, &e)
			if e["SignatureVersion"] != version || e["MessageId"] != aws.ToString(pub.MessageId) {
				t.Errorf("v%s %s: %s", version, what, doc)
			}
			if err := verifySNSMessage(doc, s.URL(), "SigningCertURL"); err != nil {
				t.Errorf("v%s %s does not verify: %v\n%s", version, what, err, doc)
			}
		}
		if err := verifySNSMessage(d.record, s.URL(), "SigningCertUrl"); err != nil {
			t.Errorf("v%s lambda record does not verify: %v\n%s", version, err, d.record)
		}
	}

	// Tampered messages, and a signature claimed under the other version, are refused.
	for name, doc := range map[string][]byte{
		"message changed":              tamper(t, got["1"].notification, "Message", "signed <1> & \"quoted\"\nline 2"),
		"subject removed":              tamper(t, got["2"].envelope, "Subject", nil),
		"topic changed":                tamper(t, got["2"].notification, "TopicArn", "arn:aws:sns:us-east-1:000000000000:other"),
		"token changed":                tamper(t, got["1"].confirmation, "Token", strings.Repeat("0", 64)),
		"v1 signature claimed as v2":   tamper(t, got["1"].envelope, "SignatureVersion", "2"),
		"v2 signature claimed as v1":   tamper(t, got["2"].envelope, "SignatureVersion", "1"),
		"signature of another message": tamper(t, got["1"].envelope, "Signature", mustString(t, got["2"].envelope, "Signature")),
	} {
		if err := verifySNSMessage(doc, s.URL(), "SigningCertURL"); err == nil {
			t.Errorf("%s: verifies", name)
		}
	}

	// The certificate is public and read-only: no other path or method gets it.
	certURL := mustString(t, got["1"].envelope, "SigningCertURL")
	if u2 := mustString(t, got["2"].envelope, "SigningCertURL"); u2 != certURL {
		t.Errorf("one server signs with one key: %s and %s", certURL, u2)
	}
	before := fetch(t, http.MethodGet, certURL)
	for _, bad := range []struct{ method, url string }{
		{http.MethodGet, s.URL() + "/SimpleNotificationService-00000000000000000000000000000000.pem"},
		{http.MethodPost, certURL},
	} {
		req, _ := http.NewRequest(bad.method, bad.url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || bytes.Contains(b, []byte("CERTIFICATE")) {
			t.Errorf("%s %s: %d %s", bad.method, bad.url, resp.StatusCode, b)
		}
	}

	// After a restart on the same data, the same key signs and the same certificate is served:
	// what was signed before still verifies.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, data)
	n, _, _ = clients(s.URL())
	oldPath := strings.TrimPrefix(certURL, strings.SplitN(certURL, "/Simple", 2)[0])
	if after := fetch(t, http.MethodGet, s.URL()+oldPath); !bytes.Equal(after, before) {
		t.Errorf("the certificate changed across the restart:\n%s\n%s", before, after)
	}
	moved := tamper(t, got["2"].notification, "SigningCertURL", s.URL()+oldPath)
	if err := verifySNSMessage(moved, s.URL(), "SigningCertURL"); err != nil {
		t.Errorf("a message signed before the restart: %v", err)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:000000000000:signed-v2"), Message: aws.String("after")}); err != nil {
		t.Fatal(err)
	}
	after := next("Notification after the restart")
	if err := verifySNSMessage(after, s.URL(), "SigningCertURL"); err != nil || mustString(t, after, "SigningCertURL") != s.URL()+oldPath {
		t.Errorf("a message signed after the restart: %v\n%s", err, after)
	}
}

func mustString(t *testing.T, doc []byte, k string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m[k].(string)
	if !ok {
		t.Fatalf("no %s in %s", k, doc)
	}
	return v
}

func fetch(t *testing.T, method, url string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b
}

// TestSNSSigningCertCluster: a message published through one node of a cluster names that
// node's certificate; every node serves it at the same path (a subscriber's GET behind a load
// balancer may reach any), and the message verifies against the certificate any node serves.
func TestSNSSigningCertCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	n, q := newSNS(nodes[0].srv.URL()), newSQS(nodes[0].srv.URL())
	topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("signed-cluster")})
	if err != nil {
		t.Fatal(err)
	}
	queue := createQueue(t, q, "signed-cluster", nil)
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:signed-cluster")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("from node 0")}); err != nil {
		t.Fatal(err)
	}
	msgs := receive(t, q, queue, 1, 5)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	env := []byte(aws.ToString(msgs[0].Body))
	certURL := mustString(t, env, "SigningCertURL")
	if err := verifySNSMessage(env, nodes[0].srv.URL(), "SigningCertURL"); err != nil {
		t.Fatalf("on the node that signed: %v", err)
	}
	path := strings.TrimPrefix(certURL, nodes[0].srv.URL())
	want := fetch(t, http.MethodGet, certURL)
	for i, node := range nodes[1:] {
		if got := fetch(t, http.MethodGet, node.srv.URL()+path); !bytes.Equal(got, want) {
			t.Errorf("node %d serves another certificate at %s", i+1, path)
		}
		moved := tamper(t, env, "SigningCertURL", node.srv.URL()+path)
		if err := verifySNSMessage(moved, node.srv.URL(), "SigningCertURL"); err != nil {
			t.Errorf("with node %d's copy of the certificate: %v", i+1, err)
		}
	}
}
