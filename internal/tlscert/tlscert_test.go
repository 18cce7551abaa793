package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	cert, key, err := SelfSigned(dir, "flint.internal", "0.0.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	before, _ := os.ReadFile(cert)
	// Reused while it covers the hosts; replaced when a new host appears.
	if _, _, err := SelfSigned(dir, "flint.internal"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(cert); string(again) != string(before) {
		t.Error("certificate regenerated although it still covers the hosts")
	}
	if _, _, err := SelfSigned(dir, "other.internal"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(cert); string(again) == string(before) {
		t.Error("certificate not regenerated for a new host")
	}

	// A client that trusts the certificate reaches a server that serves it, by name and by IP.
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, url := range []string{srv.URL, "https://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
	}
}
