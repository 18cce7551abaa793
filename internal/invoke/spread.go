package invoke

import (
	"hash/fnv"
	"slices"
	"strings"
)

// Provisioned concurrency across a cluster (docs/CLUSTER.md, "Provisioned concurrency"). A
// config of P environments is the cluster's, not each node's: the nodes that share it (every
// node heard from lately that does not drain, this one included unless it drains) sorted by
// name, the i-th keeps P/N environments, one more for the first P mod N of them counted from
// a position derived from the version (so that many configs of 1 do not all land on the same
// node). Each node computes its share from what it heard; the split is recomputed when the
// nodes change (a node announcing itself, stopping, draining, or unheard for staleAfter
// refreshes). A single node keeps the whole count, as before.

// SpreadProvisioned makes this node keep only its share of each provisioned-concurrency
// config. Call it before Run on a node that will route (Route); until routing has heard the
// other nodes (one RouteConfig.Refresh) it keeps none, so a restarted node never adds a
// whole count on top of the others'.
func (s *Service) SpreadProvisioned() { s.spread.Store(true) }

// provShare is this node's part of n provisioned environments of the version under key.
func (s *Service) provShare(key string, n int) int {
	if n <= 0 || !s.spread.Load() {
		return n
	}
	r := s.router.Load()
	if r == nil {
		return 0
	}
	return r.share(key, n)
}

func (r *router) share(key string, n int) int {
	r.mu.RLock()
	members, settled := r.shares, r.settled
	r.mu.RUnlock()
	i := slices.Index(members, r.cfg.Node)
	if !settled || i < 0 {
		return 0 // not known yet, or draining
	}
	k := len(members)
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	pos := (i - int(h.Sum32()%uint32(k)) + k) % k
	share := n / k
	if pos < n%k {
		share++
	}
	return share
}

// updateShares recomputes the nodes sharing provisioned concurrency and, when they changed
// (or on the first call), every version's share.
func (r *router) updateShares() {
	now := r.cfg.Now()
	var members []string
	if !r.s.draining.Load() {
		members = append(members, r.cfg.Node)
	}
	r.mu.Lock()
	for name, p := range r.peers {
		if !p.Draining && now.Sub(p.heard) <= staleAfter*r.cfg.Refresh {
			members = append(members, name)
		}
	}
	slices.Sort(members)
	changed := !r.settled || !slices.Equal(members, r.shares)
	r.shares, r.settled = members, true
	r.mu.Unlock()
	if changed {
		r.s.log.Info("provisioned concurrency split", "nodes", strings.Join(members, ","))
		r.s.reprovisionAll()
	}
}

// provisionedElsewhere sums the provisioned environments of key the other nodes announced
// ready (the draining and the unheard left out).
func (r *router) provisionedElsewhere(key string) int {
	now := r.cfg.Now()
	sum := 0
	r.mu.RLock()
	for _, p := range r.peers {
		if !p.Draining && now.Sub(p.heard) <= staleAfter*r.cfg.Refresh {
			sum += p.Prov[key]
		}
	}
	r.mu.RUnlock()
	return sum
}

// reprovisionAll recomputes every function's provisioned environments on this node.
func (s *Service) reprovisionAll() {
	s.mu.RLock()
	names := map[string]bool{}
	for key, it := range s.prov {
		if it.pc != nil {
			name, _, _ := strings.Cut(key, ".")
			names[name] = true
		}
	}
	s.mu.RUnlock()
	for name := range names {
		s.reprovision(name)
	}
}
