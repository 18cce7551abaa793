package linger

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Every item put is handed over exactly once, in order per producer, also those still queued
// when quit closes.
func TestQueueDeliversEveryItemOnce(t *testing.T) {
	q := New[int](time.Millisecond, 1<<20)
	quit := make(chan struct{})
	var got []int
	var batches int
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(quit, func(b []int) { batches++; got = append(got, b...) })
	}()
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !q.Put(p*each + i) {
					t.Error("queue full")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(quit)
	<-done
	if len(got) != producers*each {
		t.Fatalf("got %d items, want %d", len(got), producers*each)
	}
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	for _, x := range got {
		p, i := x/each, x%each
		if i <= last[p] {
			t.Fatalf("producer %d: item %d after %d", p, i, last[p])
		}
		last[p] = i
	}
	if batches >= producers*each {
		t.Errorf("%d batches for %d items: nothing was batched", batches, len(got))
	}
}

// An idle queue's first item is handed over without waiting for another.
func TestQueueWakesForFirstItem(t *testing.T) {
	q := New[string](time.Millisecond, 10)
	quit := make(chan struct{})
	defer close(quit)
	out := make(chan []string, 10)
	go q.Run(quit, func(b []string) { out <- slices.Clone(b) })
	for _, want := range []string{"a", "b"} {
		q.Put(want)
		select {
		case b := <-out:
			if len(b) != 1 || b[0] != want {
				t.Fatalf("batch %q, want [%s]", b, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not handed over", want)
		}
		time.Sleep(5 * time.Millisecond) // the consumer goes idle again
	}
}

// A full queue refuses instead of growing.
func TestQueueRefusesWhenFull(t *testing.T) {
	q := New[int](time.Hour, 2)
	if !q.Put(1) || !q.Put(2) {
		t.Fatal("refused below its size")
	}
	if q.Put(3) {
		t.Fatal("took a third item with room for two")
	}
}
