// Package linux is the sandbox backend that isolates each execution environment with Linux
// namespaces (pid, mount, uts, ipc, net, cgroup, and user when not root), a read-only root
// assembled from the host's runtime files and entered with pivot_root, cgroups (v1 or v2) for
// memory, CPU, pids and the freezer, no capabilities, and a seccomp filter.
//
// Go cannot run code between fork and exec, so the backend re-executes its own binary
// (/proc/self/exe) with os.Args[0] set to "flint-sandbox-init"; that process is pid 1 of the new
// pid namespace. Init, called first thing in main (and in the TestMain of any test package that
// creates linux sandboxes), recognises it, builds the root, opens the Runtime API listener at
// 127.0.0.1:9001 and one at 127.0.0.1:N for each of the Spec's ports inside the new network
// namespace and hands them all to the parent in one message over a socketpair (SCM_RIGHTS: the
// Runtime API's first, then the ports' in the Spec's order), waits until the parent has placed it
// into the environment's cgroups, drops every capability, installs the seccomp filter and forks
// the runtime and then each of the Spec's extensions, then (on amd64) execs a 456-byte static
// program in its own place (pid1_amd64.asm) that reaps orphans and reports the runtime's exit.
// The runtime's exit is the instance's Wait; the rest of the environment (extensions, which get
// SHUTDOWN) lives until Destroy kills the init. What listens on those sockets is the worker,
// in the host: nothing of Flint runs inside the environment but that pid 1. A prestarted
// environment (prestart_linux.go) starts its runtime before its function is known, chrooted into
// the root through an exec stage ("flint-sandbox-exec") that drops its privileges; the init
// mounts the function and enters the root at the bind. Every
// environment has a network namespace of its own, so those sockets are reachable from inside it
// only. With Network "egress" (alias "host") the namespace also gets a veth pair to the host
// with a /30 of 169.254.0.0/17 and the host masquerades its traffic to the world, dropping
// anything for the host itself, other environments, link-local addresses and IPv6 (net_linux.go);
// the host's side is made while the init is still a spare. Killing the init (Destroy, or the
// server dying: Pdeathsig) takes every process of the environment with it, its mount namespace
// with all its mounts and its network namespace with its veth pair. A frozen environment
// (cgroup v1 freezer) cannot act on a SIGKILL until it is thawed, so each server also starts a
// reaper (the binary re-executed as "flint-sandbox-reaper", outside every environment's cgroups,
// in a session of its own): when the server dies, however it dies, the reaper kills, thaws and
// removes every environment under the server's cgroup parent, from the cgroups alone (the state
// directory may be gone by then). Each server has a parent of its own under CgroupParent,
// <hash of StateDir>-<random>, flocked while the server or its reaper lives; Reclaim at start
// takes the parents nobody holds (dead servers', whose reaper died too) and never another's.
//
// Under a root server the init builds the root as root, then the runtime and the init itself
// run as Lambda's sandbox user (uid 993, gid 990, no supplementary groups: unprivileged on the
// host too), with no capabilities, no_new_privs, secure bits that keep root from regaining any,
// and the seccomp filter; the init is not dumpable, so /proc/1 tells the runtime nothing beyond
// its name. (Changing credentials clears the parent-death signal; the init arms it
// again.) Code is readable as that user because the unpacked files are 0644/0755, which Lambda
// also requires. Under a non-root server the environment gets a user namespace mapping its uid 0
// to the server's user, with the same capability, no_new_privs and seccomp restrictions. Files of
// the host it can see are mounted read-only, /proc/sys and similar host-wide knobs are
// read-only and /proc/kcore and friends are masked (as in Docker's default).
//
// Nothing of the host's layout shows inside: the init's command line is its name only (the root's
// path comes over the control socket), /etc entries that are links elsewhere are copied, and the
// code, layers and runtime client are mounted through read-only overlays named by descriptor, so
// that mountinfo shows no host path (rootfs_linux.go).
//
// The hostname is Lambda-like: "169.254.X.Y", derived from the environment id. /tmp is a tmpfs
// bounded by EphemeralStorageMB; tmpfs pages are memory, so what a function keeps in /tmp counts
// toward its MemorySize (unlike Lambda's disk-backed /tmp).
//
// This package must not import the API, the store or the worker.
package linux
