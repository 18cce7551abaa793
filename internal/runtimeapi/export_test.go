package runtimeapi

// Route is one endpoint of the route table, as tests outside the package see it.
type Route struct {
	Method, Pattern string
	Wait            bool
}

// Routes lists the route table, so that tests exercise every endpoint in it.
func Routes() []Route {
	var rs []Route
	for _, r := range routes {
		rs = append(rs, Route{Method: r.method, Pattern: r.pattern, Wait: r.wait})
	}
	return rs
}

// Parked reports whether a runtime's /next is parked, waiting for an Invoke.
func Parked(s *Server) bool { return len(s.parked) > 0 }

// ShutdownQueued reports whether Shutdown has queued SHUTDOWN for the extension named name.
func ShutdownQueued(s *Server, name string) bool {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.name == name {
			return e.shutdownSent
		}
	}
	return false
}
