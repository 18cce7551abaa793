package apigw

import "strings"

// Router is an API's route table, built once per stored revision and read by every request.
type Router struct {
	API    *API
	routes []compiled
	def    *Route // an HTTP API's $default route; nil: none
}

type compiled struct {
	route *Route
	segs  []segment
}

// Compile builds the route table of api. Paths were validated before api was stored; a route
// whose path does not parse matches nothing.
func Compile(api *API) *Router {
	rt := &Router{API: api}
	for i := range api.Routes {
		r := &api.Routes[i]
		if r.Path == DefaultRoute {
			rt.def = r
			continue
		}
		segs, err := parsePath(r.Path)
		if err != nil {
			continue
		}
		rt.routes = append(rt.routes, compiled{route: r, segs: segs})
	}
	return rt
}

// Match is a request's route and the path parameters it takes from the path.
type Match struct {
	Route          *Route
	PathParameters map[string]string // nil: the route has none
}

// Match finds the route for method and path (the path the API sees, its stage removed,
// decoded): of the routes whose path matches, the most specific segment by segment (a literal
// before a {param} before a greedy {name+}), then the one naming method before ANY; else an
// HTTP API's $default route.
func (rt *Router) Match(method, path string) (Match, bool) {
	parts := splitPath(path)
	var best *compiled
	for i := range rt.routes {
		c := &rt.routes[i]
		if c.route.Method != method && c.route.Method != "ANY" {
			continue
		}
		if !c.matches(parts) {
			continue
		}
		if best == nil || c.before(best) {
			best = c
		}
	}
	if best == nil {
		if rt.def != nil {
			return Match{Route: rt.def}, true
		}
		return Match{}, false
	}
	return Match{Route: best.route, PathParameters: best.params(parts)}, true
}

// splitPath splits a request path into its segments; "/" and "" have none. A trailing slash
// does not make a segment of its own.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (c *compiled) matches(parts []string) bool {
	for i, s := range c.segs {
		if s.greedy {
			return len(parts) > i // one segment at least
		}
		if i >= len(parts) {
			return false
		}
		if s.param == "" && parts[i] != s.lit {
			return false
		}
		if s.param != "" && parts[i] == "" {
			return false
		}
	}
	return len(parts) == len(c.segs)
}

// before reports whether c is a better match than o for a path both match.
func (c *compiled) before(o *compiled) bool {
	for i := 0; i < len(c.segs) && i < len(o.segs); i++ {
		if a, b := c.segs[i].kind(), o.segs[i].kind(); a != b {
			return a > b
		}
	}
	return c.route.Method != "ANY" && o.route.Method == "ANY"
}

func (c *compiled) params(parts []string) map[string]string {
	var out map[string]string
	for i, s := range c.segs {
		if s.param == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, 2)
		}
		if s.greedy {
			out[s.param] = strings.Join(parts[i:], "/")
			break
		}
		out[s.param] = parts[i]
	}
	return out
}
