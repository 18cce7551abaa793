package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// TestServeExternalNATSFlags: `flint serve --nats` refuses what cannot work before it starts
// anything (exit 2, the reason), reads FLINT_NATS and its credentials from the environment,
// and against a real NATS server that refuses its password stops with that reason (exit 1),
// never showing the password.
func TestServeExternalNATSFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"no node, no master key", []string{"serve", "--nats", "nats://127.0.0.1:4222"}, nil,
			[]string{`node "": a node on an external NATS needs a name`, "master key every node shares"}},
		{"with the embedded cluster's flags", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--node", "n1", "--master-key-file", "k",
			"--cluster-listen", "127.0.0.1:7101", "--join", "127.0.0.1:7102"}, nil, []string{"nats and cluster-listen/join exclude each other"}},
		{"with nats-listen", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--node", "n1", "--master-key-file", "k",
			"--nats-listen", "127.0.0.1:4223"}, nil, []string{"does not run with --nats"}},
		{"from the environment", []string{"serve"}, map[string]string{"FLINT_NATS": "nats://127.0.0.1:4222,ws://h:80", "FLINT_NODE": "n1",
			"FLINT_MASTER_KEY": "x", "FLINT_NATS_PASSWORD": "hunter2"}, []string{`nats "ws://h:80": the scheme must be nats:// or tls://`, "nats-password needs nats-user"}},
		{"creds without nats", []string{"serve", "--nats-creds", "f.creds"}, nil, []string{"nats-creds: options of an external NATS, which --nats names"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t, context.Background(), tc.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d", code, exitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}

	t.Run("a real server refuses the password", func(t *testing.T) {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: 8 << 20, Username: "flint", Password: "right"})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats server not ready")
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FLINT_MASTER_KEY", base64.StdEncoding.EncodeToString(key))
		t.Setenv("FLINT_NATS_PASSWORD", "hunter2")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, _, stderr := runCLI(t, ctx, "serve", "--nats", ns.ClientURL(), "--nats-user", "flint", "--node", "n1",
			"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--sandbox", "process")
		if code != exitFailure || !strings.Contains(stderr, "the server refused Flint's credentials") || strings.Contains(stderr, "hunter2") {
			t.Fatalf("serve with a wrong password: exit %d, stderr %q", code, stderr)
		}
		t.Log(strings.TrimSpace(stderr))
	})
}
