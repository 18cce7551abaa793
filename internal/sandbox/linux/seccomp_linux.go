package linux

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nsCloneFlags are the clone(2) flags that would make new namespaces (CLONE_NEWTIME shares bits
// with the exit signal in clone(2) and is only reachable through clone3 and unshare, both denied).
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// errSeccompArch is returned where no filter exists for GOARCH.
var errSeccompArch = errors.New("no seccomp filter for this architecture")

// seccompFilter builds the BPF program: wrong architecture → kill; a denied syscall → EPERM;
// clone with namespace flags → EPERM; clone3 → ENOSYS (libc falls back to clone, whose flags a
// filter can see); everything else allowed.
func seccompFilter() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, errSeccompArch
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
		offArg0 = 16 // low 32 bits on a little-endian machine
	)
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	p := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, Jt: 1, Jf: 0, K: auditArch},
		{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: ld, K: offNr},
	}
	if x32Bit != 0 { // the x32 ABI on x86_64 would bypass the numbers below
		p = append(p, unix.SockFilter{Code: jge, Jt: 0, Jf: 1, K: x32Bit}, unix.SockFilter{Code: ret, K: eperm})
	}
	for _, nr := range deniedSyscalls {
		p = append(p, unix.SockFilter{Code: jeq, Jt: 0, Jf: 1, K: uint32(nr)}, unix.SockFilter{Code: ret, K: eperm})
	}
	p = append(p,
		unix.SockFilter{Code: jeq, Jt: 0, Jf: 1, K: uint32(unix.SYS_CLONE3)},
		unix.SockFilter{Code: ret, K: enosys},
		unix.SockFilter{Code: jeq, Jt: 0, Jf: 3, K: uint32(unix.SYS_CLONE)},
		unix.SockFilter{Code: ld, K: offArg0},
		unix.SockFilter{Code: jset, Jt: 0, Jf: 1, K: nsCloneFlags},
		unix.SockFilter{Code: ret, K: eperm},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	)
	return p, nil
}

// installSeccomp installs the filter on the calling thread (no_new_privs must be set).
func installSeccomp() error {
	p, err := seccompFilter()
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return errno
	}
	return nil
}
