package config

import (
	"strings"
	"testing"
)

func clusterConfig(mutate func(*Config)) Config {
	c := Default()
	c.Node, c.ClusterListen, c.Join = "n1", "127.0.0.1:7101", []string{"127.0.0.1:7102", "127.0.0.1:7103"}
	c.MasterKey = "base64-of-32-bytes (checked when loaded, not here)"
	if mutate != nil {
		mutate(&c)
	}
	return c
}

func TestValidateCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{"standalone", Default(), ""},
		{"three nodes on loopback", clusterConfig(nil), ""},
		{"master key file instead of the environment", clusterConfig(func(c *Config) { c.MasterKey, c.MasterKeyFile = "", "/etc/flint/master.key" }), ""},
		{"beyond loopback with a certificate", clusterConfig(func(c *Config) {
			c.ClusterListen, c.Join, c.TLSCert, c.TLSKey = "10.0.0.1:7100", []string{"10.0.0.2:7100", "10.0.0.3:7100"}, "c.pem", "k.pem"
		}), ""},
		{"join without cluster-listen", func() Config { c := Default(); c.Join = []string{"127.0.0.1:7102"}; return c }(), "give all three or none"},
		{"node without cluster-listen", func() Config { c := Default(); c.Node = "n1"; return c }(), "give all three or none"},
		{"cluster-listen without join", clusterConfig(func(c *Config) { c.Join = nil }), "cluster-listen needs join"},
		{"no node name", clusterConfig(func(c *Config) { c.Node = "" }), "needs a name"},
		{"node name with a space", clusterConfig(func(c *Config) { c.Node = "node 1" }), "needs a name"},
		{"bad cluster-listen", clusterConfig(func(c *Config) { c.ClusterListen = "7101" }), "cluster-listen \"7101\""},
		{"bad join", clusterConfig(func(c *Config) { c.Join = []string{"host-without-port"} }), "join \"host-without-port\""},
		{"join lists this node", clusterConfig(func(c *Config) { c.Join = append(c.Join, c.ClusterListen) }), "this node's own cluster-listen"},
		{"no shared master key", clusterConfig(func(c *Config) { c.MasterKey = "" }), "master key every node shares"},
		{"beyond loopback without TLS", clusterConfig(func(c *Config) { c.ClusterListen = "0.0.0.0:7101" }), "routes need TLS"},
		{"beyond loopback with a self-signed certificate", clusterConfig(func(c *Config) { c.ClusterListen, c.TLSSelfSigned = "10.0.0.1:7101", true }), "routes need TLS"},
		{"cluster-advertise", clusterConfig(func(c *Config) { c.ClusterAdvertise = "127.0.0.1:8101" }), ""},
		{"bad cluster-advertise", clusterConfig(func(c *Config) { c.ClusterAdvertise = "8101" }), "cluster-advertise \"8101\""},
		{"cluster-advertise without cluster-listen", func() Config { c := Default(); c.ClusterAdvertise = "127.0.0.1:8101"; return c }(), "give all three or none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReplicas(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"standalone", Default(), 1},
		{"two nodes", clusterConfig(func(c *Config) { c.Join = c.Join[:1] }), 1},
		{"three nodes", clusterConfig(nil), 3},
		{"five nodes", clusterConfig(func(c *Config) { c.Join = append(c.Join, "127.0.0.1:7104", "127.0.0.1:7105") }), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Replicas(); got != tc.want {
				t.Errorf("Replicas() = %d, want %d", got, tc.want)
			}
		})
	}
}

func externalConfig(mutate func(*Config)) Config {
	c := Default()
	c.Node, c.NATS = "n1", []string{"nats://10.0.0.1:4222", "tls://10.0.0.2:4222"}
	c.MasterKey = "base64-of-32-bytes (checked when loaded, not here)"
	if mutate != nil {
		mutate(&c)
	}
	return c
}

func TestValidateExternal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{"two servers", externalConfig(nil), ""},
		{"user and password in the URL", externalConfig(func(c *Config) { c.NATS = []string{"nats://flint:pw@10.0.0.1:4222"} }), ""},
		{"token in the URL", externalConfig(func(c *Config) { c.NATS = []string{"nats://t0k3n@10.0.0.1:4222"} }), ""},
		{"creds file", externalConfig(func(c *Config) { c.NATSCreds = "/etc/flint/flint.creds" }), ""},
		{"nkey seed", externalConfig(func(c *Config) { c.NATSNKey = "/etc/flint/flint.nk" }), ""},
		{"user and password", externalConfig(func(c *Config) { c.NATSUser, c.NATSPassword = "flint", "pw" }), ""},
		{"mutual TLS", externalConfig(func(c *Config) { c.NATSTLSCA, c.NATSTLSCert, c.NATSTLSKey = "ca.pem", "c.pem", "k.pem" }), ""},
		{"five replicas", externalConfig(func(c *Config) { c.NATSReplicas = 5 }), ""},
		{"with cluster-listen", externalConfig(func(c *Config) { c.ClusterListen = "127.0.0.1:7101" }), "exclude each other"},
		{"with join", externalConfig(func(c *Config) { c.Join = []string{"127.0.0.1:7102"} }), "exclude each other"},
		{"with nats-listen", externalConfig(func(c *Config) { c.NATSListen = "127.0.0.1:4222" }), "does not run with --nats"},
		{"with nats-token", externalConfig(func(c *Config) { c.NATSToken = "t" }), "nats://TOKEN@host:4222"},
		{"no node name", externalConfig(func(c *Config) { c.Node = "" }), "needs a name"},
		{"no shared master key", externalConfig(func(c *Config) { c.MasterKey = "" }), "master key every node shares"},
		{"not a URL", externalConfig(func(c *Config) { c.NATS = []string{"10.0.0.1:4222"} }), "want a URL"},
		{"websocket", externalConfig(func(c *Config) { c.NATS = []string{"ws://10.0.0.1:80"} }), "nats:// or tls://"},
		{"two kinds of credentials", externalConfig(func(c *Config) { c.NATSCreds, c.NATSUser = "f.creds", "flint" }), "give one of"},
		{"URL user info and creds", externalConfig(func(c *Config) { c.NATS, c.NATSCreds = []string{"nats://t@h:4222"}, "f.creds" }), "give one of"},
		{"password without user", externalConfig(func(c *Config) { c.NATSPassword = "pw" }), "needs nats-user"},
		{"client cert without key", externalConfig(func(c *Config) { c.NATSTLSCert = "c.pem" }), "go together"},
		{"six replicas", externalConfig(func(c *Config) { c.NATSReplicas = 6 }), "want 1 to 5"},
		{"external options without nats", func() Config { c := Default(); c.NATSCreds, c.NATSReplicas = "f.creds", 3; return c }(), "nats-creds, nats-replicas: options of an external NATS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("a bad URL's password is not in the error", func(t *testing.T) {
		err := externalConfig(func(c *Config) { c.NATS = []string{"ws://flint:hunter2@h:80"} }).Validate()
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("Validate = %v", err)
		}
	})
	t.Run("a node on an external NATS is clustered, keeps the embedded replica rule apart", func(t *testing.T) {
		c := externalConfig(nil)
		if !c.Clustered() || !c.External() || c.Replicas() != 1 {
			t.Errorf("Clustered %v External %v Replicas %d, want true true 1", c.Clustered(), c.External(), c.Replicas())
		}
		if d := Default(); d.Clustered() || d.External() {
			t.Errorf("default: Clustered %v External %v", d.Clustered(), d.External())
		}
	})
}
