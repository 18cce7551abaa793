package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
	"github.com/flint-run/flint/internal/sigv4"
)

func clientWith(url, id, secret string) *lambda.Client {
	return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

// signed sends method url with body, signed by (id, secret) at time at for service "lambda";
// tamper, when set, changes the request after signing.
func signed(t *testing.T, method, url, id, secret string, body []byte, at time.Time, tamper func(*http.Request)) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if id != "" {
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b
}

// createAccessKey adds an access key to the key file in data, as `flint keys create` does.
func createAccessKey(t *testing.T, data, description string) sigv4.Credentials {
	t.Helper()
	keys, err := sigv4.Load(filepath.Join(data, "access-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Create(description)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestSigV4 runs a server with an access key: the real SDK with the key works; a wrong secret,
// an unknown key, a changed payload, a request 20 minutes old and an unsigned request get AWS's
// errors; download links work without credentials until tampered with; an AWS_IAM function URL
// refuses an unsigned request and serves a signed one.
func TestSigV4(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	if s.DevMode() {
		t.Fatal("a server with access keys runs in development mode")
	}
	ctx := context.Background()
	c := clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey)
	createFunction(t, c, "echo", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"a":1}`)})
	if err != nil || string(out.Payload) != `{"a": 1}` {
		t.Fatalf("signed invoke: %v %s", err, out.Payload)
	}

	if _, err := clientWith(s.URL(), key.AccessKeyID, "wrong"+key.SecretAccessKey[5:]).ListFunctions(ctx, &lambda.ListFunctionsInput{}); apiErrorCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := clientWith(s.URL(), "AKIAUNKNOWNKEY000000", key.SecretAccessKey).ListFunctions(ctx, &lambda.ListFunctionsInput{}); apiErrorCode(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}
	invokeURL := s.URL() + "/2015-03-31/functions/echo/invocations"
	status, code, body := signed(t, "POST", invokeURL, key.AccessKeyID, key.SecretAccessKey, []byte(`{"a":1}`), time.Now(), nil)
	if status != 200 || string(body) != `{"a": 1}` {
		t.Errorf("signed raw invoke: %d %s %s", status, code, body)
	}
	status, code, body = signed(t, "POST", invokeURL, key.AccessKeyID, key.SecretAccessKey, []byte(`{"a":1}`), time.Now(), func(r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
	})
	if status != 403 || code != "InvalidSignatureException" {
		t.Errorf("changed payload: %d %s %s", status, code, body)
	}
	status, code, body = signed(t, "POST", invokeURL, key.AccessKeyID, key.SecretAccessKey, []byte(`{}`), time.Now().Add(-20*time.Minute), nil)
	if status != 403 || code != "InvalidSignatureException" || !strings.Contains(string(body), "Signature expired") {
		t.Errorf("20 minutes old: %d %s %s", status, code, body)
	}
	status, code, body = signed(t, "POST", invokeURL, "", "", []byte(`{}`), time.Now(), nil)
	if status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s %s", status, code, body)
	}

	// Download links: usable without credentials, not once changed.
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	loc := aws.ToString(fn.Code.Location)
	if resp, err := http.Get(loc); err != nil || resp.StatusCode != 200 {
		t.Errorf("code location %s: %v %v", loc, err, resp)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(strings.Replace(loc, "/echo/", "/other/", 1)); err != nil || resp.StatusCode != 403 {
		t.Errorf("tampered code location: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	// A function URL with AWS_IAM.
	u, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("echo"), AuthType: types.FunctionUrlAuthTypeAwsIam})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.SplitN(strings.TrimPrefix(aws.ToString(u.FunctionUrl), "http://"), ".", 2)[0]
	urlPath := s.URL() + "/lambda-url/" + id + "/hello"
	if status, _, body := signed(t, "POST", urlPath, "", "", []byte(`{"x":1}`), time.Now(), nil); status != 403 {
		t.Errorf("unsigned AWS_IAM URL call: %d %s", status, body)
	}
	if status, _, body := signed(t, "POST", urlPath, key.AccessKeyID, "bad"+key.SecretAccessKey[3:], []byte(`{"x":1}`), time.Now(), nil); status != 403 {
		t.Errorf("badly signed AWS_IAM URL call: %d %s", status, body)
	}
	if status, _, body := signed(t, "POST", urlPath, key.AccessKeyID, key.SecretAccessKey, []byte(`{"x":1}`), time.Now(), nil); status != 200 || !strings.Contains(string(body), `"rawPath": "/hello"`) {
		t.Errorf("signed AWS_IAM URL call: %d %s", status, body)
	}

	// A URL caller is refused before any of its body is read: a badly signed AWS_IAM call, and
	// any call to a NONE URL that no policy opens, get their 403 while the 5 MB they announce
	// has not been sent.
	createFunction(t, c, "closed", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
	closed, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("closed"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	closedID := strings.SplitN(strings.TrimPrefix(aws.ToString(closed.FunctionUrl), "http://"), ".", 2)[0]
	for name, path := range map[string]string{"AWS_IAM, bad signature": "/lambda-url/" + id + "/", "NONE, not public": "/lambda-url/" + closedID + "/"} {
		req, _ := http.NewRequest("POST", s.URL()+path, nil)
		sum := sha256.Sum256([]byte("the body"))
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: "wrong"}, req,
			hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		head := "POST " + path + " HTTP/1.1\r\nHost: " + req.Host + "\r\nContent-Length: 5000000\r\n"
		for k, vs := range req.Header {
			head += k + ": " + vs[0] + "\r\n"
		}
		io.WriteString(conn, head+"\r\n")
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Errorf("%s: no answer before the body was sent: %v", name, err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 403 || string(b) != `{"Message":"Forbidden"}` {
				t.Errorf("%s: %d %s, want 403 {\"Message\":\"Forbidden\"}", name, resp.StatusCode, b)
			}
		}
		conn.Close()
	}
}

// TestDevMode: without keys a loopback server accepts any caller and says so; a key created
// while it runs (as `flint keys create` does) turns verification on; without keys a server
// refuses to listen beyond loopback.
func TestDevMode(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	if !s.DevMode() {
		t.Fatal("no keys, loopback: want development mode")
	}
	if status, _, body := signed(t, "GET", s.URL()+"/2015-03-31/functions", "", "", nil, time.Now(), nil); status != 200 {
		t.Errorf("unsigned in development mode: %d %s", status, body)
	}
	key := createAccessKey(t, data, "late")
	waitFor(t, "the new key to take effect", 10*time.Second, func() bool { return !s.DevMode() })
	if status, code, _ := signed(t, "GET", s.URL()+"/2015-03-31/functions", "", "", nil, time.Now(), nil); status != 403 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned after a key was created: %d %s", status, code)
	}
	if status, _, body := signed(t, "GET", s.URL()+"/2015-03-31/functions", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil); status != 200 {
		t.Errorf("signed: %d %s", status, body)
	}

	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Sandbox = "0.0.0.0:0", t.TempDir(), "process"
	srv, err := server.New(cfg, nil)
	if err == nil {
		err = srv.Start(context.Background())
		defer srv.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "without access keys") {
		t.Errorf("non-loopback without keys: %v", err)
	}
}

// TestDownloadLinkSurvivesRestart: a Code.Location handed out before a restart still downloads
// the code from the restarted server (its key is derived from the master key, not made at
// start), and one with a changed expiry does not.
func TestDownloadLinkSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}})
	createFunction(t, clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey), "echo", "python3.12", "app.handler", zip)
	fn, err := clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := url.Parse(aws.ToString(fn.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = startServer(t, data) // another port: the link's path and query, at the new address
	get := func(query string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(s.URL() + loc.Path + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if status, body := get(loc.RawQuery); status != http.StatusOK || !bytes.Equal(body, zip) {
		t.Errorf("link from before the restart: %d, %d bytes (want 200 and the %d bytes uploaded)", status, len(body), len(zip))
	}
	q := loc.Query()
	q.Set("X-Flint-Expires", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	if status, _ := get(q.Encode()); status != http.StatusForbidden {
		t.Errorf("link with a later expiry: %d, want 403", status)
	}
}
