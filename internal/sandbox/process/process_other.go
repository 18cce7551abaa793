//go:build !linux

package process

import "syscall"

// sysProcAttr puts the environment in a process group of its own. Without Linux's parent-death
// signal, environments outlive a server killed with -9 (on macOS, for instance): Destroy and a
// clean shutdown still end them. Nor is there /proc to read peak memory from: instances are no
// sandbox.MemoryReporter here, and REPORT lines say 0 MB.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// schedAttr stands for Linux's scheduling attributes, which nothing sets here.
type schedAttr struct{}

// idle leaves a spare as is: only Linux's SCHED_IDLE is used to start spares in the background.
func idle(pid int) *schedAttr { return nil }

func unidle(pid int, attr *schedAttr) error { return nil }

// CanUnidle reports false: spares are not started idle here.
func CanUnidle() bool { return false }
