package invoke

import (
	"context"
	"testing"
)

// TestAdmitProvisioned: provisioned concurrency is carved out of the function's reservation and,
// for a function without one, out of the account's unreserved pool; a version's invocations
// run on its provisioned slots first and spill over into what is left on demand. Account limit
// 5; f reserves 3 with 2 provisioned on its version; g has none, with 1 provisioned on its
// version: g and every function without a reservation share 5 - 3 - 1 = 1. On one node and
// with the limits in the ledger.
func TestAdmitProvisioned(t *testing.T) {
	for _, ledger := range []bool{false, true} {
		name := "single"
		if ledger {
			name = "ledger"
		}
		t.Run(name, func(t *testing.T) {
			n := clusterOf(t, 1, ledger)[0]
			s, f, g := n.svc, n.f, n.g
			fv := &Entry{counters: f.counters, prov: &provSlots{}}
			gv := &Entry{counters: g.counters, prov: &provSlots{}}
			set := func(fReserved, fProv, gProv int64) {
				s.mu.Lock()
				defer s.mu.Unlock()
				f.counters.reserved.Store(fReserved)
				f.counters.provisioned.Store(fProv)
				fv.prov.limit.Store(fProv)
				g.counters.provisioned.Store(gProv)
				gv.prov.limit.Store(gProv)
				s.recountLocked()
				s.limitsChanged(f.counters)
				s.limitsChanged(g.counters)
			}
			set(3, 2, 1)
			admit := func(e *Entry, want string, why string) admission {
				t.Helper()
				a, th := s.admit(context.Background(), e)
				switch {
				case want == "" && th != nil:
					t.Fatalf("%s: throttled (%s), want admitted", why, th.Reason)
				case want != "" && th == nil:
					a.release()
					t.Fatalf("%s: admitted, want throttled %s", why, want)
				case th != nil && th.Reason != want:
					t.Fatalf("%s: throttled %s, want %s", why, th.Reason, want)
				}
				return a
			}
			latest := admit(f, "", "f $LATEST, 1st")
			admit(f, ReasonReserved, "f $LATEST, 2nd: 3 reserved - 2 provisioned")
			p1, p2 := admit(fv, "", "f's version, 1st"), admit(fv, "", "f's version, 2nd")
			if p1.prov == nil || p2.prov == nil {
				t.Fatal("f's version did not run on its provisioned slots")
			}
			admit(fv, ReasonReserved, "f's version, 3rd: no provisioned slot, no on-demand left")
			latest.release()
			spill := admit(fv, "", "f's version, 3rd, the on-demand slot free again")
			if spill.prov != nil {
				t.Fatal("a spill-over took a provisioned slot")
			}
			admit(f, ReasonReserved, "f $LATEST with the spill-over on the on-demand slot")
			if got := s.Concurrency()["f"]; got != 3 {
				t.Errorf("f's concurrency = %d, want 3", got)
			}
			for _, a := range []admission{p1, p2, spill} {
				a.release()
			}

			gl := admit(g, "", "g $LATEST, 1st")
			admit(g, ReasonAccount, "g $LATEST, 2nd: the pool is 5 - 3 reserved - 1 provisioned")
			gp := admit(gv, "", "g's version on its provisioned slot")
			admit(gv, ReasonAccount, "g's version, 2nd, spilling over into the full pool")
			gp.release()

			set(3, 0, 0) // the provisioned configs deleted
			gl2 := admit(g, "", "g $LATEST, 2nd, without g's provisioned concurrency")
			fl := admit(f, "", "f $LATEST, 1st, without f's")
			fl2 := admit(f, "", "f $LATEST, 2nd")
			fl3 := admit(f, "", "f $LATEST, 3rd")
			admit(f, ReasonReserved, "f $LATEST, 4th")
			for _, a := range []admission{gl, gl2, fl, fl2, fl3} {
				a.release()
			}
			if got := s.Concurrency(); got["f"] != 0 || got["g"] != 0 {
				t.Errorf("concurrency after every release = %v, want 0", got)
			}
		})
	}
}

// TestAdmitProvisionedClusterWide: in a cluster a version's provisioned concurrency is the
// cluster's, in the ledger: with reserved 2 all provisioned on f's version (nothing left on
// demand), 12 invocations tried at once on 3 nodes admit exactly 2, the rest throttled with
// Lambda's reason; and any one node admits both, whether or not it keeps a provisioned
// environment of its own (its invocations are placed where one is idle).
func TestAdmitProvisionedClusterWide(t *testing.T) {
	nodes := clusterOf(t, 3, true)
	for i := range nodes {
		s, f := nodes[i].svc, nodes[i].f
		s.mu.Lock()
		f.counters.provisioned.Store(2)
		s.recountLocked()
		s.limitsChanged(f.counters)
		p := &provSlots{slots: s.ledger.Slots("provisioned.f.1")}
		p.limit.Store(2)
		p.slots.SetLimit(2)
		s.mu.Unlock()
		nodes[i].f = &Entry{counters: f.counters, prov: p} // f's version 1
	}
	// Any one node admits both slots, whichever nodes keep the environments.
	c := nodes[2]
	var held []admission
	for range 2 {
		a, th := c.svc.admit(context.Background(), c.f)
		if th != nil || a.prov == nil {
			t.Fatalf("node c on f's provisioned slots: %v, %+v", th, a)
		}
		held = append(held, a)
	}
	if _, th := c.svc.admit(context.Background(), c.f); th == nil || th.Reason != ReasonReserved {
		t.Fatalf("a 3rd invocation on node c: %v, want %s", th, ReasonReserved)
	}
	for _, a := range held {
		a.release()
	}
	admitted, reasons := admitAll(nodes, 4, func(n node) *Entry { return n.f })
	if len(admitted) != 2 || reasons[ReasonReserved] != 10 || len(reasons) > 1 {
		t.Fatalf("%d of 12 admitted across 3 nodes, throttles %v; want 2, the rest %s", len(admitted), reasons, ReasonReserved)
	}
	for _, a := range admitted {
		if a.prov == nil {
			t.Error("an invocation admitted on demand with nothing left on demand")
		}
		a.release()
	}
}
