package main

import "syscall"

// sysProcAttr has the runtime die with the relay, however the relay ends.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
