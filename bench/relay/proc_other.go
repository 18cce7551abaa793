//go:build !linux

package main

import "syscall"

// sysProcAttr: without Linux's parent-death signal the runtime is killed only when run returns
// (a relay killed with -9 leaves it running).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
