package invoke

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// View names one of the store's buckets whose watch feeds the in-memory view. The watches are
// the view's only writers; a writer of the store that must read its own write (an API handler
// before it answers, so that an invoke that follows sees the change) waits with Await for the
// revision its write returned.
type View int

const (
	Functions View = iota
	Versions
	Aliases
	Provisioned
	URLs
	Policies
	EventInvokeConfigs
	APIs
	views
)

var viewNames = [views]string{"functions", "versions", "aliases", "provisioned", "urls", "policies", "event invoke configs", "apis"}

func (v View) String() string {
	if v < 0 || v >= views {
		return fmt.Sprintf("View(%d)", int(v))
	}
	return viewNames[v]
}

// awaitTimeout bounds Await: the watch is in-process and delivers in tens of microseconds; a
// view this far behind is a fault, logged by the caller, and the write stands.
const awaitTimeout = 10 * time.Second

// watermark is the newest revision of one bucket that its watch has applied to the view.
type watermark struct {
	mu   sync.Mutex
	rev  uint64
	next chan struct{} // closed when rev moves; nil: no one waits
}

func (w *watermark) advance(rev uint64) {
	w.mu.Lock()
	if rev > w.rev {
		w.rev = rev
		if w.next != nil {
			close(w.next)
			w.next = nil
		}
	}
	w.mu.Unlock()
}

func (w *watermark) wait(ctx context.Context, rev uint64) error {
	for {
		w.mu.Lock()
		if w.rev >= rev {
			w.mu.Unlock()
			return nil
		}
		if w.next == nil {
			w.next = make(chan struct{})
		}
		next := w.next
		w.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Await returns once the view holds revision rev of bucket v (and everything before it), or
// ctx ends, or awaitTimeout passes.
func (s *Service) Await(ctx context.Context, v View, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, awaitTimeout)
	defer cancel()
	if err := s.seen[v].wait(ctx, rev); err != nil {
		return fmt.Errorf("await %s revision %d: %w", v, rev, err)
	}
	return nil
}

// watched wraps a watch's handler: the view's watermark for v moves once the change is applied.
func watched[T any](s *Service, v View, apply func(key string, rev uint64, x *T)) func(string, uint64, *T) {
	return func(key string, rev uint64, x *T) {
		apply(key, rev, x)
		s.seen[v].advance(rev)
	}
}

// ViewState is how far one bucket's view has come: Applied is the newest revision its watch has
// applied, Stored the bucket's newest when asked. The view is current once Applied reaches
// Stored; a node whose watch is failing (the cluster electing leaders) stays behind, and serves
// what it has.
type ViewState struct {
	View    string `json:"view"`
	Applied uint64 `json:"applied"`
	Stored  uint64 `json:"stored"`
}

// Views reports every view's state (GET /flint/v1/views).
func (s *Service) Views(ctx context.Context) ([]ViewState, error) {
	r := s.store
	stored := [views]func(context.Context) (uint64, error){
		Functions: r.Functions.Revision, Versions: r.Versions.Revision, Aliases: r.Aliases.Revision,
		Provisioned: r.Provisioned.Revision, URLs: r.URLs.Revision, Policies: r.Policies.Revision,
		EventInvokeConfigs: r.EventInvokeConfigs.Revision, APIs: r.APIs.Revision,
	}
	out := make([]ViewState, 0, views)
	for v := range views {
		// The bucket first: a change applied meanwhile only moves Applied further.
		rev, err := stored[v](ctx)
		if err != nil {
			return nil, err
		}
		w := &s.seen[v]
		w.mu.Lock()
		applied := w.rev
		w.mu.Unlock()
		out = append(out, ViewState{View: v.String(), Applied: applied, Stored: rev})
	}
	return out, nil
}
