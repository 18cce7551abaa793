package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

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
