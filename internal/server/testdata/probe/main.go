// Command probe is a Go Lambda function (aws-lambda-go) that reports what it can see and do from
// inside its execution environment; the linux sandbox tests run it.
package main

import (
	"context"
	"errors"
	"net"
	"os"
	"sort"
	"strconv"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
)

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.EPERM:
			return "EPERM"
		case unix.EROFS:
			return "EROFS"
		case unix.EACCES:
			return "EACCES"
		case unix.ENOSYS:
			return "ENOSYS"
		}
		return errno.Error()
	}
	return err.Error()
}

func probe(ctx context.Context, ev struct {
	Data string `json:"data"`
}) (map[string]any, error) {
	host, _ := os.Hostname()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	sort.Ints(pids)
	var ifaces []string
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			ifaces = append(ifaces, i.Name)
		}
	}
	_, dataErr := os.Stat(ev.Data)
	return map[string]any{
		"hostname": host,
		"pids":     pids,
		"root":     errName(os.WriteFile("/probe", []byte("x"), 0o644)),
		"task":     errName(os.WriteFile("/var/task/probe", []byte("x"), 0o644)),
		"tmp":      errName(os.WriteFile("/tmp/probe", []byte("x"), 0o644)),
		"mount":    errName(unix.Mount("none", "/tmp", "tmpfs", 0, "")),
		"ptrace":   errName(unix.PtraceAttach(1)),
		"module":   errName(unix.InitModule(nil, "")),
		"reboot":   errName(unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)),
		"ifaces":   ifaces,
		"data":     dataErr == nil,
	}, nil
}

func main() { lambda.Start(probe) }
