package asyncq

import (
	"context"
	"sync"
	"time"
)

// coarseDeadline hands out contexts that end between d/2 and d from the call, sharing one
// context (and its one timer) among every caller within d/2 of each other. A context.WithTimeout
// per enqueue or ack cost a timer each: on a busy node adding a timer wakes the network poller
// (a system call) and the two took ≈ 5% of the enqueue path's CPU. The bounds these waits keep
// are a fault's (an ack that never comes), so a coarse deadline serves them as well.
type coarseDeadline struct {
	d time.Duration

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc // kept for vet: the context ends at its deadline in any case
	expires time.Time
}

func newCoarseDeadline(d time.Duration) *coarseDeadline { return &coarseDeadline{d: d} }

// get returns a context that ends at least c.d/2 from now and at most c.d from now.
func (c *coarseDeadline) get() context.Context {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil || c.expires.Sub(now) < c.d/2 {
		c.expires = now.Add(c.d)
		c.ctx, c.cancel = context.WithDeadline(context.Background(), c.expires)
	}
	return c.ctx
}
