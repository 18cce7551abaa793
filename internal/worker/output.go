package worker

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// maxOutput bounds one invocation's buffered output; past it the oldest half is dropped (the
// tail is what LogType=Tail returns).
const maxOutput = 1 << 20

// capture collects an environment's merged stdout/stderr from a pipe. Reads and appends happen
// under one mutex, and take drains the pipe without blocking, so everything the runtime wrote
// before it posted its response belongs to that invocation.
type capture struct {
	r    *os.File
	rc   syscall.RawConn
	mu   sync.Mutex
	buf  []byte
	tmp  [32 << 10]byte
	done chan struct{}
}

func newCapture(r *os.File) (*capture, error) {
	rc, err := r.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &capture{r: r, rc: rc, done: make(chan struct{})}, nil
}

// run reads until the pipe's write ends are all closed or the reader is closed.
func (c *capture) run() {
	defer close(c.done)
	_ = c.rc.Read(func(fd uintptr) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.drainLocked(int(fd))
	})
}

// drainLocked reads what the pipe holds; it reports whether to keep waiting (false at EOF/error).
func (c *capture) drainLocked(fd int) (wait bool) {
	for {
		n, err := syscall.Read(fd, c.tmp[:])
		if n > 0 {
			if len(c.buf)+n > maxOutput {
				keep := len(c.buf) / 2
				c.buf = append(c.buf[:0], c.buf[len(c.buf)-keep:]...)
			}
			c.buf = append(c.buf, c.tmp[:n]...)
			continue
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return errors.Is(err, syscall.EAGAIN)
	}
}

// take returns everything written so far and starts a new buffer.
func (c *capture) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.rc.Control(func(fd uintptr) { c.drainLocked(int(fd)) })
	if len(c.buf) == 0 {
		return nil
	}
	out := make([]byte, len(c.buf))
	copy(out, c.buf)
	c.buf = c.buf[:0]
	return out
}

// close stops run and waits for it; what the pipe still held stays available to take.
func (c *capture) close() {
	c.mu.Lock()
	_ = c.rc.Control(func(fd uintptr) { c.drainLocked(int(fd)) })
	c.mu.Unlock()
	_ = c.r.Close()
	<-c.done
}
