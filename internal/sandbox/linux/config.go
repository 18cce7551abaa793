package linux

import "log/slog"

// Config configures the backend.
type Config struct {
	// StateDir is a per-node directory for the environments' roots and bookkeeping
	// (e.g. DATA/sandboxes). One backend at a time owns it (New locks it): Reclaim clears it.
	StateDir string
	// CgroupParent is the cgroup, in every hierarchy used, under which each server makes a parent
	// of its own, <CgroupParent>/<hash of StateDir>-<random>, and each environment gets a cgroup
	// <id> in that. A relative path is taken below the server's own cgroup, an absolute one from
	// the hierarchy's root. Default "flint". Servers may share it; none touches another's parent.
	CgroupParent string
	// Network is what environments reach; each has a network namespace of its own either way,
	// with its Runtime API and ports on its own loopback. "none" (default): nothing else.
	// "egress" (or its alias "host"): the world beyond the host through a veth pair and NAT, but
	// neither the host itself nor other environments (net_linux.go). Root only.
	Network string
	// Prespawn is how many inits are kept started ahead of Create, so that a cold start does not
	// wait for the binary to exec and initialise (several ms for a large binary). 0 means 2;
	// negative, none. After a burst the backend keeps as many as it had cold starts in flight at
	// once, from Create to the end of INIT (at most maxSpareInits), for spareWindow, then goes
	// back to Prespawn; it refills once no cold start is in flight. Close stops them.
	Prespawn int
	Log      *slog.Logger
}
