package invoke

import (
	"fmt"
	"testing"
)

// TestProvisionedShare: the nodes' shares of P add up to P, each P/N or one more, and the
// extra ones land on different nodes for different versions; a node outside the members
// (draining) and a node that has not settled keep none.
func TestProvisionedShare(t *testing.T) {
	for n := 1; n <= 4; n++ {
		members := []string{"n1", "n2", "n3", "n4"}[:n]
		for p := 0; p <= 9; p++ {
			for _, key := range []string{"fn.1", "fn.2", "other.7"} {
				sum := 0
				for _, me := range members {
					r := &router{cfg: RouteConfig{Node: me}, shares: members, settled: true}
					got := r.share(key, p)
					if got != p/n && got != p/n+1 {
						t.Errorf("N=%d P=%d %s: %s keeps %d, want %d or %d", n, p, key, me, got, p/n, p/n+1)
					}
					sum += got
				}
				if sum != p {
					t.Errorf("N=%d P=%d %s: shares add up to %d", n, p, key, sum)
				}
			}
		}
	}
	// P=1 on 3 nodes for many versions: not all on one node.
	on := map[string]int{}
	members := []string{"n1", "n2", "n3"}
	for v := range 30 {
		for _, me := range members {
			r := &router{cfg: RouteConfig{Node: me}, shares: members, settled: true}
			on[me] += r.share(fmt.Sprintf("fn.%d", v), 1)
		}
	}
	if len(on) != 3 || on["n1"] == 30 || on["n2"] == 30 || on["n3"] == 30 {
		t.Errorf("30 configs of 1 on 3 nodes: %v", on)
	}
	if got := (&router{cfg: RouteConfig{Node: "n4"}, shares: members, settled: true}).share("fn.1", 3); got != 0 {
		t.Errorf("a draining node keeps %d", got)
	}
	if got := (&router{cfg: RouteConfig{Node: "n1"}, shares: members}).share("fn.1", 3); got != 0 {
		t.Errorf("an unsettled node keeps %d", got)
	}
}
