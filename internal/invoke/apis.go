package invoke

import "github.com/flint-run/flint/internal/apigw"

// apiView holds the API Gateway APIs' route tables, compiled once per stored revision, so that
// a request to an API finds its route in memory. Guarded by Service.mu.
type apiView struct {
	byID   map[string]*apigw.Router // key: apiId
	byName map[string]apiItem       // key: name; deleted APIs keep their revision
}

type apiItem struct {
	rev uint64
	id  string // "": deleted
}

// applyAPI installs revision rev of an API (a nil: deleted) unless a newer one is known.
func (s *Service) applyAPI(name string, rev uint64, a *apigw.API) {
	var rt *apigw.Router
	if a != nil {
		rt = apigw.Compile(a) // outside the lock: requests go on meanwhile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apis.byName == nil {
		s.apis.byName, s.apis.byID = map[string]apiItem{}, map[string]*apigw.Router{}
	}
	old, known := s.apis.byName[name]
	if known && rev <= old.rev {
		return
	}
	if old.id != "" {
		delete(s.apis.byID, old.id)
	}
	it := apiItem{rev: rev}
	if a != nil {
		it.id = a.APIID
		s.apis.byID[a.APIID] = rt
	}
	s.apis.byName[name] = it
}

// LookupAPI returns the route table of the API with this id, from memory: the store's watch
// keeps it, and a writer awaits it (View APIs) before it answers.
func (s *Service) LookupAPI(id string) (*apigw.Router, bool) {
	s.mu.RLock()
	rt, ok := s.apis.byID[id]
	s.mu.RUnlock()
	return rt, ok
}
