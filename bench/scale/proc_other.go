//go:build !linux

package main

import "syscall"

// The figures come from /proc and cgroups: on other systems the benchmark runs nothing.

func sysProcAttr() *syscall.SysProcAttr                   { return &syscall.SysProcAttr{} }
func vmRSS(int) (int64, error)                            { return 0, errNotLinux }
func processPss(int) (int64, error)                       { return 0, errNotLinux }
func descendants(int) (runtimes, others []int, err error) { return nil, nil, errNotLinux }
func isFrozen(int) bool                                   { return false }
func makeCgroup(string) (string, error)                   { return "", errNotLinux }
func cgroupUsage(string) (usage, kmem int64, err error)   { return 0, 0, errNotLinux }
func removeCgroup(string)                                 {}
