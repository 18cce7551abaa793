package sns

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/flint-run/flint/internal/atomicfile"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/store"
)

// Signing: SNS signs every message it delivers to http(s) and sqs endpoints (and the Lambda
// event's record): Signature is the base64 of an RSA PKCS #1 v1.5 signature (SHA1withRSA for
// SignatureVersion 1, SHA256withRSA for 2, as the topic's SignatureVersion attribute says) of
// the message's string to sign, and SigningCertURL names the certificate whose public key
// verifies it. Flint keeps one RSA key and self-signed certificate per server in its data
// directory, made on the first start and never replaced (a message signed before a restart
// still verifies after it), and serves the certificate at SigningCertURL on its endpoint,
// unsigned and read-only, as SNS's sns.REGION.amazonaws.com serves its own. The certificate is
// also kept in the SNS bucket (cert.FINGERPRINT), so every node of a cluster serves it.

const (
	signingKeyFile  = "signing-key.pem"
	signingCertFile = "signing-cert.pem"
	// signingValidity is long: replacing the certificate would orphan every SigningCertURL
	// already delivered.
	signingValidity = 20 * 365 * 24 * time.Hour
)

// Signer signs notifications with a server's key.
type Signer struct {
	dir string
	mu  sync.Mutex
	k   *signingKey // nil until loaded or made
}

// signingKey is a loaded key and its certificate.
type signingKey struct {
	key     *rsa.PrivateKey
	certPEM []byte
	path    string // SigningCertURL's path: /SimpleNotificationService-FINGERPRINT.pem
}

// certPathRE matches a SigningCertURL's path (SNS's form: the name and a hex fingerprint).
var certPathRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^/SimpleNotificationService-[0-9a-f]{32}\.pem$`)
})

// LoadSigner reads the signing key and certificate in dir. When dir has neither, they are made
// (an RSA 2048 key, the key file 0600) when first needed: making a key takes a fifth of a
// second, which a server that never signs (most test servers) should not pay at its start. A
// key without its certificate, or either unreadable, is an error: a new key would silently
// invalidate the certificate users fetched.
func LoadSigner(dir string) (*Signer, error) {
	g := &Signer{dir: dir}
	k, err := loadKey(dir)
	if err != nil {
		return nil, err
	}
	g.k = k
	return g, nil
}

// current returns the key, making it on first use when dir had none.
func (g *Signer) current() (*signingKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.k != nil {
		return g.k, nil
	}
	k, err := loadKey(g.dir)
	if err == nil && k == nil {
		k, err = newKey(g.dir)
	}
	if err != nil {
		return nil, err
	}
	g.k = k
	return k, nil
}

// loadKey reads dir's key and certificate; nil, nil when there are none.
func loadKey(dir string) (*signingKey, error) {
	keyPath, certPath := filepath.Join(dir, signingKeyFile), filepath.Join(dir, signingCertFile)
	keyPEM, kerr := os.ReadFile(keyPath)
	certPEM, cerr := os.ReadFile(certPath)
	if errors.Is(kerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist) {
		return nil, nil
	}
	if kerr != nil {
		return nil, fmt.Errorf("sns signing key: %w", kerr)
	}
	if cerr != nil {
		return nil, fmt.Errorf("sns signing certificate: %w", cerr)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("sns signing key %s: no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sns signing key %s: %w", keyPath, err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sns signing key %s: not an RSA key", keyPath)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return nil, fmt.Errorf("sns signing certificate %s: no PEM block", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sns signing certificate %s: %w", certPath, err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("sns signing certificate %s does not hold the key in %s", certPath, keyPath)
	}
	return keyOf(key, certPEM, cb.Bytes), nil
}

func newKey(dir string) (*signingKey, error) {
	keyPath, certPath := filepath.Join(dir, signingKeyFile), filepath.Join(dir, signingCertFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sns signing: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sns signing: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("sns signing: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{Organization: []string{"Flint (self-signed)"}, CommonName: "Flint SNS message signing"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(signingValidity), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sns signing: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sns signing: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The certificate is written last: a start that stopped between the two finds a key alone
	// and refuses, rather than pairing it with a certificate of another key.
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("sns signing: %w", err)
	}
	if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("sns signing: %w", err)
	}
	return keyOf(key, certPEM, der), nil
}

func keyOf(key *rsa.PrivateKey, certPEM, der []byte) *signingKey {
	sum := sha256.Sum256(der)
	return &signingKey{key: key, certPEM: certPEM, path: "/SimpleNotificationService-" + hex.EncodeToString(sum[:16]) + ".pem"}
}

// stringToSign is SNS's canonical form of e: "Name\nvalue\n" for each signed member, in byte
// order of the names. A Notification signs Message, MessageId, Subject (when it has one),
// Timestamp, TopicArn and Type; a SubscriptionConfirmation or UnsubscribeConfirmation signs
// Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn and Type.
func stringToSign(e *envelope) string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", e.Message)
	add("MessageId", e.MessageId)
	if e.Type == "Notification" {
		if e.Subject != nil {
			add("Subject", *e.Subject)
		}
		add("Timestamp", e.Timestamp)
	} else {
		add("SubscribeURL", e.SubscribeURL)
		add("Timestamp", e.Timestamp)
		add("Token", e.Token)
	}
	add("TopicArn", e.TopicArn)
	add("Type", e.Type)
	return b.String()
}

// sign sets e's SignatureVersion (version: "2" for SHA256withRSA, else "1"), Signature and
// SigningCertURL (on base, the endpoint the message's call came to).
func (g *Signer) sign(e *envelope, version, base string) error {
	h, sum := crypto.SHA1, func(b []byte) []byte { s := sha1.Sum(b); return s[:] }
	if version == "2" {
		h, sum = crypto.SHA256, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	} else {
		version = "1"
	}
	k, err := g.current()
	if err != nil {
		return err
	}
	sig, err := rsa.SignPKCS1v15(nil, k.key, h, sum([]byte(stringToSign(e))))
	if err != nil {
		return fmt.Errorf("sign sns message: %w", err)
	}
	e.SignatureVersion, e.Signature, e.SigningCertURL = version, base64.StdEncoding.EncodeToString(sig), base+k.path
	return nil
}

// IsSigningCert reports whether r is a GET of a SigningCertURL.
func IsSigningCert(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && certPathRE().MatchString(r.URL.Path)
}

// certKey is where the certificate a SigningCertURL's path names is kept in the SNS bucket, so
// that any node of a cluster serves every node's certificate.
func certKey(path string) string {
	return "cert." + strings.TrimSuffix(strings.TrimPrefix(path, "/SimpleNotificationService-"), ".pem")
}

// shareCert stores this server's certificate in the bucket, once, before the first message
// naming it is delivered.
func (s *Service) shareCert(ctx context.Context) error {
	if s.signer == nil || s.certShared.Load() {
		return nil
	}
	k, err := s.signer.current()
	if err != nil {
		return err
	}
	doc, _ := json.Marshal(string(k.certPEM))
	if _, err := s.store.Create(ctx, certKey(k.path), doc); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("share sns signing certificate: %w", err)
	}
	s.certShared.Store(true)
	return nil
}

// serveCert answers a GET of a SigningCertURL: the certificate of this server or of another
// node of its cluster, or 404.
func (s *Service) serveCert(w http.ResponseWriter, r *http.Request) {
	var certPEM []byte
	if s.signer != nil {
		// Only a key that exists can have signed a message: a GET does not make one.
		s.signer.mu.Lock()
		if k := s.signer.k; k != nil && k.path == r.URL.Path {
			certPEM = k.certPEM
		}
		s.signer.mu.Unlock()
	}
	if certPEM == nil {
		b, _, err := s.store.Get(r.Context(), certKey(r.URL.Path))
		var text string
		if err != nil || json.Unmarshal(b, &text) != nil {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("sns signing certificate", "path", r.URL.Path, "err", err)
			}
			http.NotFound(w, r)
			return
		}
		certPEM = []byte(text)
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	if r.Method == http.MethodGet {
		_, _ = w.Write(certPEM)
	}
}
