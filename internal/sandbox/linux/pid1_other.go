//go:build linux && !amd64

package linux

// pid1Program: none for this architecture; the init stays pid 1 (waitRuntime's own loop).
var pid1Program []byte
