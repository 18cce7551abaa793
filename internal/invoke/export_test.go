package invoke

// WarmNodes lists the other nodes this node believes have an idle environment of the function
// version's current configuration (tests wait on it instead of sleeping).
func (s *Service) WarmNodes(e *Entry) []string {
	r := s.router.Load()
	if r == nil || e.Fn == nil {
		return nil
	}
	c := &e.Fn.Config
	return r.warm(routeKey(c.FunctionName, c.Version, c.RevisionId))
}

// KnownNodes lists the other nodes whose announcements this node holds.
func (s *Service) KnownNodes() []string {
	r := s.router.Load()
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for n := range r.peers {
		out = append(out, n)
	}
	return out
}
