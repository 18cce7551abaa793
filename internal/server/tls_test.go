package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/nats-io/nats.go"

	"github.com/flint-run/flint/internal/config"
)

// TestTLSSelfSigned serves the API over HTTPS with a self-signed certificate kept in the data
// directory, and exposes NATS beyond loopback: TLS and a token required of outside clients.
func TestTLSSelfSigned(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, func(c *config.Config) { c.TLSSelfSigned = true; c.NATSListen = "0.0.0.0:0" })
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s is not https", s.URL())
	}
	pem, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), HTTPClient: tlsClient,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
	createFunction(t, c, "echo", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"over":"tls"}`)})
	if err != nil || string(out.Payload) != `{"over": "tls"}` {
		t.Fatalf("invoke over TLS: %v %s", err, out.Payload)
	}
	got, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String("echo")})
	if err != nil || !strings.HasPrefix(aws.ToString(got.Code.Location), "https://") {
		t.Errorf("code location over TLS: %v %v", err, got)
	}
	// Plain HTTP is not served; an untrusting client refuses the certificate.
	if resp, err := http.Get("http" + strings.TrimPrefix(s.URL(), "https") + "/2015-03-31/functions"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP answered %d", resp.StatusCode)
		}
	}
	if _, err := http.Get(s.URL() + "/2015-03-31/functions"); err == nil {
		t.Error("a client that does not trust the certificate got through")
	}

	// NATS beyond loopback: no token or no TLS is refused; the token from the data directory with
	// the certificate gets in.
	url := strings.Replace(s.NATSURL(), "0.0.0.0", "127.0.0.1", 1)
	if nc, err := nats.Connect(url, nats.RootCAs(filepath.Join(data, "tls", "cert.pem")), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("NATS without the token let a client in")
	}
	tok, err := os.ReadFile(filepath.Join(data, "nats-token"))
	if st, _ := os.Stat(filepath.Join(data, "nats-token")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("nats token file: %v", err)
	}
	nc, err := nats.Connect(url, nats.Token(strings.TrimSpace(string(tok))), nats.RootCAs(filepath.Join(data, "tls", "cert.pem")), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS with token and TLS: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("NATS connection is not TLS")
	}
	nc.Close()
}

// TestExposedNATSNeedsTLS: opening NATS beyond loopback without TLS is a configuration error.
func TestExposedNATSNeedsTLS(t *testing.T) {
	cfg := config.Default()
	cfg.NATSListen = "0.0.0.0:4222"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "needs TLS") {
		t.Errorf("Validate() = %v", err)
	}
	cfg.TLSSelfSigned = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("with TLS: %v", err)
	}
}
