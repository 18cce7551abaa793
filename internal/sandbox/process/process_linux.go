package process

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

var _ sandbox.MemoryReporter = (*instance)(nil)

// sysProcAttr puts the environment in a process group of its own, killed with the server even
// after a kill -9 (the parent-death signal).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// MaxMemoryUsed reads the main process's peak resident set (VmHWM). The status file stays open
// and is re-read from offset 0, which regenerates it: one pread per REPORT. (os.File.ReadAt
// reads until its buffer is full, so it made a second pread past the end, for which the
// kernel generated the whole file again only to return nothing.)
func (i *instance) MaxMemoryUsed() (uint64, error) {
	if err := i.Lock(); err != nil {
		return 0, err
	}
	defer i.Unlock()
	if !i.Started() {
		return 0, sandbox.ErrDestroyed
	}
	if i.status == nil {
		f, err := os.Open("/proc/" + strconv.Itoa(i.cmd.Process.Pid) + "/status")
		if err != nil {
			return 0, err
		}
		i.status = f
	}
	// Fd is valid until Destroy closes the file, which waits for the Guard held here; the file
	// is not pollable, so it has no non-blocking mode to leave.
	n, err := syscall.Pread(int(i.status.Fd()), i.statusBuf[:], 0)
	if err != nil {
		return 0, fmt.Errorf("process: read %s: %w", i.status.Name(), err)
	}
	b := i.statusBuf[:n]
	at := bytes.Index(b, []byte("VmHWM:"))
	if at < 0 {
		return 0, errors.New("process: no VmHWM")
	}
	line := b[at+len("VmHWM:"):]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, err
	}
	return kb * 1024, nil
}

var _ sandbox.Dialer = (*instance)(nil)

// Dial reaches a listener of the environment's. The process sandbox shares the host's network,
// where a loopback port may be another program's: each address family has its own ports, so an
// extension listening on [::1]:P does not stop another program from holding 127.0.0.1:P, and a
// delivery that tried 127.0.0.1 first (runtimeapi's dialEnv) reached that program (a loaded CI
// run lost an extension's telemetry so). A loopback address counts as the environment's only
// where a process of its group holds the listening socket; elsewhere the dial is refused, as it
// would be in an environment with a network of its own.
func (i *instance) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	port, err := strconv.Atoi(portText)
	if err != nil || ip == nil || !ip.IsLoopback() {
		return d.DialContext(ctx, network, addr)
	}
	if err := i.Lock(); err != nil {
		return nil, err
	}
	pgid := 0
	if i.Started() {
		pgid = i.cmd.Process.Pid
	}
	i.Unlock()
	owned := false
	if pgid != 0 {
		var err error
		if owned, err = listensIn(pgid, ip, port); err != nil { // /proc unreadable: dial as the host would
			owned = true
		}
	}
	if !owned {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.TCPAddr{IP: ip, Port: port}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return d.DialContext(ctx, network, addr)
}

// listensIn reports whether a process of group pgid holds a socket listening on ip:port (or on
// its family's wildcard address, or on IPv6's for IPv4).
func listensIn(pgid int, ip net.IP, port int) (bool, error) {
	inodes := map[string]bool{}
	files := []string{"/proc/net/tcp6"}
	if ip.To4() != nil {
		files = append(files, "/proc/net/tcp")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f == "/proc/net/tcp6" { // no IPv6 on this host
				continue
			}
			return false, err
		}
		for _, line := range bytes.Split(b, []byte("\n"))[1:] {
			fields := bytes.Fields(line)
			if len(fields) < 10 || string(fields[3]) != "0A" { // TCP_LISTEN
				continue
			}
			local, p, ok := procNetAddr(string(fields[1]))
			if !ok || p != port {
				continue
			}
			if local.Equal(ip) || local.IsUnspecified() {
				inodes["socket:["+string(fields[9])+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || processGroup(pid) != pgid {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + p.Name() + "/fd") // gone meanwhile: none
		for _, fd := range fds {
			if link, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); err == nil && inodes[link] {
				return true, nil
			}
		}
	}
	return false, nil
}

// procNetAddr parses a /proc/net/tcp{,6} address: hex, each 32-bit word in the host's byte
// order, then the port in hex.
func procNetAddr(s string) (net.IP, int, bool) {
	host, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, false
	}
	raw, err := hex.DecodeString(host)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return nil, 0, false
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		binary.BigEndian.PutUint32(ip[w:], binary.NativeEndian.Uint32(raw[w:]))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	return ip, int(port), true
}

// processGroup is pid's process group, or 0 if it cannot be read.
func processGroup(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses; it ends at the last ')'.
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0
	}
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 3 {
		return 0
	}
	pgrp, _ := strconv.Atoi(string(fields[2]))
	return pgrp
}

// idle puts every thread of the spare pid in SCHED_IDLE, once it is exec'd: it runs only on CPU
// nothing else wants, and threads it makes later inherit it. For a spare, started ahead of
// demand: refilling a pool after a burst otherwise took a CPU from warm invokes. (Forking from a
// thread of this process put in SCHED_IDLE would have covered the window between the exec and
// this sweep too, but that thread holds the fork lock while it forks: starved on a busy host, it
// stalled every other start.) It returns the attributes unidle gives the threads back at the
// bind, which needs CAP_SYS_NICE (CanUnidle): without it the spare is left as is (nil).
func idle(pid int) *schedAttr {
	if !CanUnidle() {
		return nil
	}
	was, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return nil
	}
	// Best effort: a thread left out runs at its usual priority; unidle puts them all back.
	_ = setThreads(pid, &unix.SchedAttr{Policy: unix.SCHED_IDLE})
	return was
}

// unidle gives every thread of process pid the attributes attr (idle's), before the
// function's code runs there. A waiting spare makes no threads (it is blocked reading its
// binding), so none is missed.
func unidle(pid int, attr *schedAttr) error { return setThreads(pid, attr) }

// setThreads gives every thread of process pid the scheduling attributes attr.
func setThreads(pid int, attr *schedAttr) error {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}

// schedAttr is a thread's scheduling policy and its parameters.
type schedAttr = unix.SchedAttr

// CanUnidle reports whether this process may leave SCHED_IDLE again (CAP_SYS_NICE in its
// effective set): only then are spares started idle.
var CanUnidle = sync.OnceValue(func() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_NICE/32].Effective&(1<<(unix.CAP_SYS_NICE%32)) != 0
})
