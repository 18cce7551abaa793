package worker

import (
	"fmt"
	"testing"
)

// envState is where an environment is in its life. Every change goes through env.to, under the
// pool's lock, which checks it against the machine below (transitions) and treats any other
// change as a bug: a panic in test binaries, an error logged in a server.
//
//	Starting ──first /next──▶ Busy ──result──▶ Idle ──acquire──▶ Busy
//	                                            │  ▲
//	                                    freeze  ▼  │ freeze failed, thawed back
//	                                          Frozen ──acquire (thawed before delivery)──▶ Busy
//
//	Starting, Idle, Frozen, Busy ──destroy, process exit, platform stop──▶ Dead
//
// Dead is final; ending a Dead environment again is allowed and changes nothing (its monitor and
// a destroy both end it). Idle and Frozen environments are in their pool's idle list, and only
// they; a Frozen one's sandbox is suspended (or being suspended: see env.freeze). Provisioned
// is not a state but a property fixed at the cold start (env.provisioned): a provisioned
// environment goes through the same states, serves first, and is never reaped or evicted.
type envState uint8

const (
	stateStarting envState = iota // cold start: sandbox made, runtime in INIT
	stateIdle                     // waiting for an invocation
	stateFrozen                   // idle, its sandbox suspended
	stateBusy                     // taken by an invocation (running it, or about to)
	stateDead                     // destroyed or being destroyed
	numStates
)

var stateNames = [numStates]string{"Starting", "Idle", "Frozen", "Busy", "Dead"}

func (s envState) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("envState(%d)", uint8(s))
}

// transitions[from] has bit `to` set when from → to is allowed.
var transitions = [numStates]uint8{
	stateStarting: 1<<stateBusy | 1<<stateDead,
	stateIdle:     1<<stateBusy | 1<<stateFrozen | 1<<stateDead,
	stateFrozen:   1<<stateBusy | 1<<stateIdle | 1<<stateDead,
	stateBusy:     1<<stateIdle | 1<<stateDead,
	stateDead:     1 << stateDead,
}

// allowed reports whether the machine has the transition from → to.
func allowed(from, to envState) bool {
	return from < numStates && to < numStates && transitions[from]&(1<<to) != 0
}

// idle reports whether the environment is in its pool's idle list (Idle or Frozen).
func (s envState) idle() bool { return s == stateIdle || s == stateFrozen }

// to moves the environment to next. The caller holds e.p.mu. An illegal transition is a bug in
// the worker: it panics in tests and is logged (and made anyway, as before the machine was
// explicit) in a server.
func (e *env) to(next envState) {
	if testing.Testing() && e.p.mu.TryLock() { // a test binary: check the caller holds the lock
		e.p.mu.Unlock()
		panic(fmt.Sprintf("worker: environment %s: state change %s → %s without the pool's lock", e.id, e.state, next))
	}
	if !allowed(e.state, next) {
		if testing.Testing() {
			panic(fmt.Sprintf("worker: environment %s: illegal state transition %s → %s", e.id, e.state, next))
		}
		e.p.log.Error("illegal environment state transition", "env", e.id, "from", e.state.String(), "to", next.String())
	}
	e.state = next
}
