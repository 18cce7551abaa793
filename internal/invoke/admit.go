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
//
// Provisioned concurrency is carved out of them, as on AWS ("Provisioned concurrency counts
// towards a function's reserved concurrency and Regional quotas. If the amount of provisioned
// concurrency on a function's versions and aliases adds up to the function's reserved
// concurrency, all invocations run on provisioned concurrency. This configuration also has the
// effect of throttling the unpublished version of the function ($LATEST)": the Lambda
// developer guide, "Managing Lambda provisioned concurrency"). A version with P provisioned
// environments admits its first P concurrent invocations on them, counted against nothing else;
// the rest of its invocations, and every invocation of $LATEST and of unprovisioned versions,
// are on demand: within the function's reservation minus all its provisioned concurrency, or,
// for a function without a reservation, within the account's unreserved pool, which every such
// function's provisioned concurrency shrinks (AWS's ClaimedAccountConcurrency: unreserved
// executions plus reserved plus provisioned concurrency).

// counters track a function's running invocations (all versions) and its limits.
type counters struct {
	running  atomic.Int64 // on demand: not on a provisioned environment's slot
	onProv   atomic.Int64 // on its versions' provisioned concurrency
	reserved atomic.Int64 // -1: no reservation
	// provisioned is the function's provisioned concurrency (every config, the cluster's):
	// its on-demand invocations may use the reservation minus this.
	provisioned atomic.Int64
	slots       *cluster.Slots // the function's on-demand reservation in the ledger; nil on a single node
}

// provSlots are a version's provisioned concurrency, kept across the version's entries so that
// a new revision counts what still runs. In a cluster they are the cluster's, in the ledger
// like a reservation: any node admits on them (and places the invocation on a provisioned
// environment wherever one is idle), not only the nodes that keep a share of the environments.
type provSlots struct {
	limit atomic.Int64   // the version's provisioned concurrency
	busy  atomic.Int64   // invocations on it through this node
	slots *cluster.Slots // "provisioned.NAME.VERSION" in the ledger; nil on a single node
}

// admission is one admitted invocation's hold on its concurrency, given back by release.
type admission struct {
	c          *counters
	prov       *provSlots     // the provisioned slot taken; nil on demand
	unreserved *atomic.Int64  // the account's unreserved count; nil for a reserved function
	slots      *cluster.Slots // the ledger slot taken; nil on a single node
}

func (a admission) release() {
	if a.prov != nil {
		if a.slots != nil {
			a.slots.Put()
		}
		a.prov.busy.Add(-1)
		a.c.onProv.Add(-1)
		return
	}
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
		out[name] = int(c.running.Load() + c.onProv.Load())
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
// or provisioned concurrency changed (and with it the account's unreserved pool). Call it
// after recountLocked, under s.mu.
func (s *Service) limitsChanged(c *counters) {
	if s.ledger == nil {
		return
	}
	limit := c.reserved.Load()
	if limit >= 0 {
		limit = max(limit-c.provisioned.Load(), 0)
	}
	c.slots.SetLimit(int(limit))
	s.account.SetLimit(int(s.accountLimit - s.claimed.Load()))
}

// recountLocked sums, over every function, the reservations and what each function takes of
// the account (its reservation, or else its provisioned concurrency). Called under s.mu.
func (s *Service) recountLocked() {
	var reserved, claimed int64
	for _, c := range s.counters {
		if r := c.reserved.Load(); r >= 0 {
			reserved += r
			claimed += r
		} else {
			claimed += c.provisioned.Load()
		}
	}
	s.reservedSum.Store(reserved)
	s.claimed.Store(claimed)
}

// admit reserves a concurrency slot for an invocation of e, or returns why not; the caller
// releases the admission when the invocation ends. The warm path is two atomic adds (a
// compare-and-swap more in a cluster) and allocates nothing; in a cluster, a node whose leased
// slots are all busy asks the ledger for one more within ctx. An invocation of a version with
// provisioned concurrency takes a provisioned slot first (two adds; in a cluster, a slot of the
// version's provisioned concurrency in the ledger too), and spills over to on demand when all
// are busy.
func (s *Service) admit(ctx context.Context, e *Entry) (admission, *Throttled) {
	c := e.counters
	if p := e.prov; p != nil && p.limit.Load() > 0 {
		if n := p.busy.Add(1); n <= p.limit.Load() {
			if p.slots == nil {
				c.onProv.Add(1)
				return admission{c: c, prov: p}, nil
			}
			if p.slots.TryTake() || p.slots.Take(ctx, int(p.limit.Load())) == nil {
				c.onProv.Add(1)
				return admission{c: c, prov: p, slots: p.slots}, nil
			}
		}
		p.busy.Add(-1) // all busy in the cluster: on demand, like a spill-over
	}
	if r := c.reserved.Load(); r >= 0 {
		limit := r - c.provisioned.Load() // what the provisioned concurrency leaves on demand
		if c.running.Add(1) > limit {
			c.running.Add(-1)
			return admission{}, &Throttled{Reason: ReasonReserved, Stopped: r == 0}
		}
		if s.ledger == nil {
			return admission{c: c}, nil
		}
		if !c.slots.TryTake() {
			if err := c.slots.Take(ctx, int(limit)); err != nil {
				c.running.Add(-1)
				return admission{}, &Throttled{Reason: ReasonReserved, err: err} // err: why (the node lost the quorum, say)
			}
		}
		return admission{c: c, slots: c.slots}, nil
	}
	pool := s.accountLimit - s.claimed.Load()
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
