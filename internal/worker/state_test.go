package worker

import (
	"fmt"
	"log/slog"
	"testing"
)

// TestStateTransitions checks every pair of states against the machine documented on envState:
// the allowed ones, and that every other one is refused (to panics in tests).
func TestStateTransitions(t *testing.T) {
	const (
		S = stateStarting
		I = stateIdle
		F = stateFrozen
		B = stateBusy
		D = stateDead
	)
	allowedPairs := map[[2]envState]string{
		{S, B}: "first /next with an invocation waiting (or a provisioned one, released at once)",
		{S, D}: "init error, exit or timeout; retired or shut down while starting",
		{I, B}: "acquire",
		{I, F}: "freeze after FreezeAfter",
		{I, D}: "reaped, evicted, retired, provisioned concurrency lowered, process exit",
		{F, B}: "acquire (thawed before delivery)",
		{F, I}: "freeze failed and the sandbox was thawed back",
		{F, D}: "reaped, evicted or retired while frozen",
		{B, I}: "result posted: release",
		{B, D}: "timeout, crash, shutdown, retired pool",
		{D, D}: "monitor and destroy both end an environment",
	}
	for from := range numStates {
		for to := range numStates {
			why, want := allowedPairs[[2]envState{from, to}]
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				if got := allowed(from, to); got != want {
					t.Fatalf("allowed(%s, %s) = %v, want %v (%s)", from, to, got, want, why)
				}
				e := &env{p: &Pool{log: slog.New(slog.DiscardHandler)}, id: "test", state: from}
				panicked := func() (p bool) {
					defer func() { p = recover() != nil }()
					e.p.mu.Lock()
					defer e.p.mu.Unlock()
					e.to(to)
					return false
				}()
				if panicked == want {
					t.Fatalf("to(%s) from %s: panicked = %v, want %v", to, from, panicked, !want)
				}
				if want && e.state != to {
					t.Fatalf("after to(%s) from %s: state = %s", to, from, e.state)
				}
			})
		}
	}
	if allowed(numStates, S) || allowed(S, numStates) {
		t.Error("a state outside the machine is allowed")
	}
}

// TestStateChangeNeedsPoolLock: to refuses (in tests) a change made without the pool's lock.
func TestStateChangeNeedsPoolLock(t *testing.T) {
	e := &env{p: &Pool{log: slog.New(slog.DiscardHandler)}, id: "test", state: stateIdle}
	defer func() {
		if recover() == nil {
			t.Error("to(Busy) without the pool's lock did not panic")
		}
		if e.state != stateIdle {
			t.Errorf("state = %s after a refused change, want Idle", e.state)
		}
	}()
	e.to(stateBusy)
}

// TestStateNames pins the names used in logs and panics.
func TestStateNames(t *testing.T) {
	for s, want := range map[envState]string{stateStarting: "Starting", stateIdle: "Idle", stateFrozen: "Frozen",
		stateBusy: "Busy", stateDead: "Dead", numStates: "envState(5)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(s), got, want)
		}
	}
}
