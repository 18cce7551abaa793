package invoke

import (
	"context"
	"sync/atomic"

	"github.com/flint-run/flint/internal/cluster"
)

// Admission: the account's concurrency and each function's reserved concurrency. On a single
// node both are counted here, in memory. In a cluster (UseLedger) they are the whole cluster's:
// each node holds slots of each limit leased from the cluster's ledger, admits against them
// with atomics, and asks the ledger only when its slots are all busy (docs/cluster-limits.md).

// counters track a function's running invocations (all versions) and its reservation.
type counters struct {
	running  atomic.Int64
	reserved atomic.Int64   // -1: no reservation
	slots    *cluster.Slots // the function's reservation in the ledger; nil on a single node
}

// admission is one admitted invocation's hold on its concurrency, given back by release.
type admission struct {
	c          *counters
	unreserved *atomic.Int64  // the account's unreserved count; nil for a reserved function
	slots      *cluster.Slots // the ledger slot taken; nil on a single node
}

func (a admission) release() {
	if a.slots != nil {
		a.slots.Put()
	}
	a.c.running.Add(-1)
	if a.unreserved != nil {
		a.unreserved.Add(-1)
	}
}

// Concurrency reports the invocations running on this node per function (all its versions),
// for every function it has seen.
func (s *Service) Concurrency() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(s.counters))
	for name, c := range s.counters {
		out[name] = int(c.running.Load())
	}
	return out
}

// UseLedger makes the account's and the functions' concurrency limits the cluster's, kept in
// l (which the caller runs). Call it before Run, on a node that is part of a cluster; a single
// node never does, and its admission touches nothing but its own counters.
func (s *Service) UseLedger(l *cluster.Ledger) {
	s.ledger = l
	s.account = l.Slots("account")
	s.account.SetLimit(int(s.accountLimit))
}

// newCounters returns the counters of a function first seen (called under s.mu).
func (s *Service) newCounters(name string) *counters {
	c := &counters{}
	c.reserved.Store(-1)
	if s.ledger != nil {
		c.slots = s.ledger.Slots("function." + name)
	}
	return c
}

// limitsChanged tells the ledger the limits as this node now sees them, after c's reservation
// changed (and with it the account's unreserved pool).
func (s *Service) limitsChanged(c *counters) {
	if s.ledger == nil {
		return
	}
	c.slots.SetLimit(int(c.reserved.Load()))
	s.account.SetLimit(int(s.accountLimit - s.reservedSum.Load()))
}

// admit reserves a concurrency slot for an invocation of e, or returns why not; the caller
// releases the admission when the invocation ends. The warm path is two atomic adds (a
// compare-and-swap more in a cluster) and allocates nothing; in a cluster, a node whose leased
// slots are all busy asks the ledger for one more within ctx.
func (s *Service) admit(ctx context.Context, e *Entry) (admission, *Throttled) {
	c := e.counters
	if r := c.reserved.Load(); r >= 0 {
		if c.running.Add(1) > r {
			c.running.Add(-1)
			return admission{}, &Throttled{Reason: ReasonReserved, Stopped: r == 0}
		}
		if s.ledger == nil {
			return admission{c: c}, nil
		}
		if !c.slots.TryTake() {
			if err := c.slots.Take(ctx, int(r)); err != nil {
				c.running.Add(-1)
				return admission{}, &Throttled{Reason: ReasonReserved, err: err} // err: why (the node lost the quorum, say)
			}
		}
		return admission{c: c, slots: c.slots}, nil
	}
	pool := s.accountLimit - s.reservedSum.Load()
	if s.unreservedRunning.Add(1) > pool {
		s.unreservedRunning.Add(-1)
		return admission{}, &Throttled{Reason: ReasonAccount}
	}
	if s.ledger == nil {
		c.running.Add(1)
		return admission{c: c, unreserved: &s.unreservedRunning}, nil
	}
	if !s.account.TryTake() {
		if err := s.account.Take(ctx, int(pool)); err != nil {
			s.unreservedRunning.Add(-1)
			return admission{}, &Throttled{Reason: ReasonAccount, err: err}
		}
	}
	c.running.Add(1)
	return admission{c: c, unreserved: &s.unreservedRunning, slots: s.account}, nil
}
