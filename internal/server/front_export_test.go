package server

import "github.com/flint-run/flint/internal/httpfront"

// FrontStats is what the API's front door served; ok is false when the API has none (TLS).
func FrontStats(s *Server) (st httpfront.Stats, ok bool) {
	f, ok := s.http.(*httpfront.Server)
	if !ok {
		return httpfront.Stats{}, false
	}
	return f.Stats(), true
}
