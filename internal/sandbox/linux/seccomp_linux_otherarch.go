//go:build linux && !amd64 && !arm64

package linux

// No filter is written for this architecture yet; Check reports it.
const (
	auditArch = 0
	x32Bit    = 0
)

var deniedSyscalls []int
