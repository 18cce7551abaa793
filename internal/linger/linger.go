// Package linger gathers items that many goroutines hand over one at a time and passes them on
// in batches. Handing each item over a channel wakes the consumer's goroutine once per item: a
// futex wake of another thread, which on a VM costs more than the work many items need. A Queue
// wakes its consumer only for the first item after it went idle, then lets items gather for an
// interval before each batch, for as long as they keep coming.
package linger

import (
	"sync"
	"time"
)

// Queue is a batching queue of T; Run consumes it.
type Queue[T any] struct {
	every   time.Duration
	maxSize int
	wake    chan struct{}

	mu     sync.Mutex
	items  []T
	spare  []T  // the consumer's previous batch, reused for the next one
	active bool // the consumer is draining on its ticker: no wake needed
}

// New returns a queue whose batches gather for every, holding at most maxSize items.
func New[T any](every time.Duration, maxSize int) *Queue[T] {
	return &Queue[T]{every: every, maxSize: maxSize, wake: make(chan struct{}, 1)}
}

// Put queues x; false when the queue is full (the caller handles x itself).
func (q *Queue[T]) Put(x T) bool {
	q.mu.Lock()
	if len(q.items) >= q.maxSize {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, x)
	wake := !q.active
	q.active = true
	q.mu.Unlock()
	if wake {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns the queued items (the caller's until its next take); none: the consumer goes
// idle, and the next Put wakes it.
func (q *Queue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.items
	if len(batch) == 0 {
		q.active = false
		return nil
	}
	clear(q.spare[:cap(q.spare)]) // drop the references the previous batch held
	q.items, q.spare = q.spare[:0], batch
	return batch
}

// Run passes batches to handle until quit is closed, then passes what is left and returns.
// handle must not keep the slice.
func (q *Queue[T]) Run(quit <-chan struct{}, handle func([]T)) {
	drain := func() bool {
		batch := q.take()
		if len(batch) > 0 {
			handle(batch)
		}
		return len(batch) > 0
	}
	tick := time.NewTicker(q.every)
	tick.Stop()
	defer tick.Stop()
	for {
		select {
		case <-q.wake:
		case <-quit:
			for drain() {
			}
			return
		}
		tick.Reset(q.every)
		for busy := true; busy; {
			select {
			case <-tick.C:
				busy = drain()
			case <-quit:
				for drain() {
				}
				return
			}
		}
		tick.Stop()
	}
}
