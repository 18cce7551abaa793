package server

import (
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/store"
)

// clusterOptions are the store's cluster options for cfg (nil: a standalone node). Routes use
// TLS whenever the API has a certificate of its own (--tls-cert): config.Validate insists on it
// beyond loopback. A self-signed certificate is made per node, so no other node could verify
// it: with --tls-self-signed, routes on loopback stay plain.
func clusterOptions(cfg config.Config) (*store.ClusterOptions, error) {
	if cfg.ClusterListen == "" {
		return nil, nil
	}
	c := &store.ClusterOptions{Node: cfg.Node, Listen: cfg.ClusterListen, Join: cfg.Join, Replicas: cfg.Replicas(),
		Advertise: cfg.ClusterAdvertise}
	if cfg.TLSCert != "" {
		var err error
		if c.TLS, err = store.RouteTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// externalOptions are the store's options for an external NATS (--nats; nil: the embedded
// server). Any of the TLS options makes the connection TLS.
func externalOptions(cfg config.Config) (*store.ExternalOptions, error) {
	if !cfg.External() {
		return nil, nil
	}
	x := &store.ExternalOptions{URLs: cfg.NATS, Node: cfg.Node, Creds: cfg.NATSCreds, NKey: cfg.NATSNKey,
		User: cfg.NATSUser, Password: cfg.NATSPassword, Replicas: cfg.NATSReplicas}
	if cfg.NATSTLSCA != "" || cfg.NATSTLSCert != "" {
		var err error
		if x.TLS, err = store.ExternalTLS(cfg.NATSTLSCA, cfg.NATSTLSCert, cfg.NATSTLSKey); err != nil {
			return nil, err
		}
	}
	return x, nil
}
