package store

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/flint-run/flint/internal/tlscert/tlscerttest"
)

// TestExternalStoreMutualTLS: a server that requires TLS and verifies clients' certificates
// admits a store with the CA and a client certificate (ExternalTLS, --nats-tls-*), and
// refuses one without the client certificate or without the CA.
func TestExternalStoreMutualTLS(t *testing.T) {
	pki := tlscerttest.New(t)
	pair, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ns := runNATS(t, 1, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 5
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pki.Pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})[0]
	keys := testKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(ca, cert, key string) error {
		cfg, err := ExternalTLS(ca, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		s, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "n1", TLS: cfg})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := open(pki.CAFile, pki.ClientCert, pki.ClientKey); err != nil {
		t.Fatalf("open with the CA and a client certificate: %v", err)
	}
	if err := open(pki.CAFile, "", ""); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("open without a client certificate = %v, want the server's refusal at once", err)
	} else {
		t.Log(err)
	}
	if err := open("", pki.ClientCert, pki.ClientKey); err == nil || !strings.Contains(err.Error(), "certificate") || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("open without the CA = %v, want an unknown authority", err)
	} else {
		t.Log(err)
	}
	if _, err := ExternalTLS(pki.ClientKey, "", ""); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("ExternalTLS of a key as CA = %v", err)
	}
}

// TestExternalStoreNKeyAndCreds: a store authenticates with an NKey seed file (--nats-nkey)
// and with a credentials file (--nats-creds: a user JWT of an account with JetStream, in a
// server trusting the operator); another seed is refused.
func TestExternalStoreNKeyAndCreds(t *testing.T) {
	keys := testKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	seedFile := func(kp nkeys.KeyPair) string {
		seed, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(dir, "seed")
		if err != nil {
			t.Fatal(err)
		}
		f.Write(seed)
		f.Close()
		return f.Name()
	}

	t.Run("nkey", func(t *testing.T) {
		user, _ := nkeys.CreateUser()
		pub, _ := user.PublicKey()
		ns := runNATS(t, 1, func(o *server.Options) {
			o.Nkeys = []*server.NkeyUser{{Nkey: pub, Permissions: flintPermissions}}
		})[0]
		s, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "n1", NKey: seedFile(user)})
		if err != nil {
			t.Fatalf("open with the nkey: %v", err)
		}
		s.Close()
		other, _ := nkeys.CreateUser()
		_, err = openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "n1", NKey: seedFile(other)})
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("open with another nkey = %v, want refused", err)
		}
	})

	t.Run("creds", func(t *testing.T) {
		op, _ := nkeys.CreateOperator()
		opPub, _ := op.PublicKey()
		oc := jwt.NewOperatorClaims(opPub)
		sys, _ := nkeys.CreateAccount()
		sysPub, _ := sys.PublicKey()
		acct, _ := nkeys.CreateAccount()
		acctPub, _ := acct.PublicKey()
		ac := jwt.NewAccountClaims(acctPub)
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		acctJWT, err := ac.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		resolver := &server.MemAccResolver{}
		resolver.Store(acctPub, acctJWT)
		resolver.Store(sysPub, sysJWT)
		user, _ := nkeys.CreateUser()
		userPub, _ := user.PublicKey()
		uc := jwt.NewUserClaims(userPub)
		uc.Pub.Allow.Add(flintPermissions.Publish.Allow...)
		uc.Sub.Allow.Add(flintPermissions.Subscribe.Allow...)
		userJWT, err := uc.Encode(acct)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := user.Seed()
		creds, err := jwt.FormatUserConfig(userJWT, seed)
		if err != nil {
			t.Fatal(err)
		}
		credsFile := filepath.Join(dir, "flint.creds")
		if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
			t.Fatal(err)
		}
		ns := runNATS(t, 1, func(o *server.Options) {
			o.TrustedOperators = []*jwt.OperatorClaims{oc}
			o.AccountResolver = resolver
			o.SystemAccount = sysPub
		})[0]
		s, err := openExternalStore(ctx, t, t.TempDir(), keys, ExternalOptions{URLs: []string{ns.ClientURL()}, Node: "n1", Creds: credsFile})
		if err != nil {
			t.Fatalf("open with the creds file: %v", err)
		}
		s.Close()
	})
}
