package clustertest

import "syscall"

// procAttr makes a node die with the test binary (a test that times out panics without running
// its cleanups, which would leave the nodes running).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
