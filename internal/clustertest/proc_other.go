//go:build !linux

package clustertest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
