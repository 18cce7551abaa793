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
	r   *os.File
	rc  syscall.RawConn
	mu  sync.Mutex
	buf []byte
	// ext are the spans of buf that write added (extensions' output): the log has them, the
	// Telemetry API's "function" events do not.
	ext  [][2]int
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
			c.room(n)
			c.buf = append(c.buf, c.tmp[:n]...)
			continue
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return errors.Is(err, syscall.EAGAIN)
	}
}

// room drops the oldest half of the buffer if n more bytes would pass maxOutput. Under mu.
func (c *capture) room(n int) {
	if len(c.buf)+n <= maxOutput {
		return
	}
	keep := len(c.buf) / 2
	cut := len(c.buf) - keep
	c.buf = append(c.buf[:0], c.buf[cut:]...)
	ext := c.ext[:0]
	for _, sp := range c.ext {
		if sp[1] > cut {
			ext = append(ext, [2]int{max(sp[0]-cut, 0), sp[1] - cut})
		}
	}
	c.ext = ext
}

// write adds output that reached the server another way (an extension's, from its own output
// pipe) after what the environment's pipe holds now.
func (c *capture) write(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.rc.Control(func(fd uintptr) { c.drainLocked(int(fd)) })
	c.room(len(b))
	c.ext = append(c.ext, [2]int{len(c.buf), len(c.buf) + len(b)})
	c.buf = append(c.buf, b...)
}

// takeMarked is take, with the spans of the output that write added.
func (c *capture) takeMarked() ([]byte, [][2]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.rc.Control(func(fd uintptr) { c.drainLocked(int(fd)) })
	ext := c.ext
	c.ext = nil
	if len(c.buf) == 0 {
		return nil, nil
	}
	out := make([]byte, len(c.buf))
	copy(out, c.buf)
	c.buf = c.buf[:0]
	return out, ext
}

// take returns everything written so far and starts a new buffer.
func (c *capture) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.rc.Control(func(fd uintptr) { c.drainLocked(int(fd)) })
	if len(c.buf) == 0 {
		c.ext = nil
		return nil
	}
	out := make([]byte, len(c.buf))
	copy(out, c.buf)
	c.buf, c.ext = c.buf[:0], nil
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
