// Package tlscert makes the self-signed certificate `flint serve --tls-self-signed` serves: an
// ECDSA P-256 key and a certificate for localhost, the loopback addresses and the listen host,
// kept under the data directory so that clients that pinned it (aws --ca-bundle) keep working
// across restarts, and renewed when it nears expiry or no longer covers the listen host.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/flint-run/flint/internal/atomicfile"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// validity of a new certificate; one within renewBefore of its end is replaced.
const (
	validity    = 365 * 24 * time.Hour
	renewBefore = 30 * 24 * time.Hour
)

// SelfSigned returns the paths of a certificate and key in dir that cover hosts (names or IP
// addresses) besides localhost, 127.0.0.1 and ::1, creating them if needed. The key file is 0600.
func SelfSigned(dir string, hosts ...string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	names, ips := []string{"localhost", "*.localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	if ok, err := covers(certFile, names, ips); err != nil {
		return "", "", err
	} else if ok {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("tls: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("tls: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{Organization: []string{"Flint (self-signed)"}, CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: names, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("tls: %w", err)
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("tls: %w", err)
	}
	if err := atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("tls: %w", err)
	}
	return certFile, keyFile, nil
}

// covers reports whether the certificate at path exists, is valid for a while yet and names
// every one of names and ips.
func covers(path string, names []string, ips []net.IP) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tls: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return false, nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || time.Until(cert.NotAfter) < renewBefore {
		return false, nil
	}
	for _, n := range names {
		if !slices.Contains(cert.DNSNames, n) {
			return false, nil
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false, nil
		}
	}
	return true, nil
}
