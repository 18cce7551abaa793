package apigw

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Protocols of an API.
const (
	ProtocolHTTP = "HTTP" // an HTTP API: payload format 2.0 (or 1.0 per route)
	ProtocolREST = "REST" // a REST API: payload format 1.0
)

// DefaultStage is an HTTP API's default stage, served with no stage segment in the path;
// DefaultRESTStage is the stage SAM gives a REST API.
const (
	DefaultStage     = "$default"
	DefaultRESTStage = "Prod"
)

// DefaultRoute is an HTTP API's catch-all route key.
const DefaultRoute = "$default"

// API is one stored API: the management API's document (the KV record, keyed by Name).
type API struct {
	Name           string            `json:"name"`
	APIID          string            `json:"apiId"`
	Protocol       string            `json:"protocol"`
	Stage          string            `json:"stage"`
	StageVariables map[string]string `json:"stageVariables"`
	Routes         []Route           `json:"routes"`
	Tags           map[string]string `json:"tags"`
}

// Route sends the requests that match Method and Path to a function.
type Route struct {
	Method string `json:"method"` // GET POST PUT PATCH DELETE HEAD OPTIONS, or ANY
	Path   string `json:"path"`   // "/…" with {param} segments and an optional last {name+}; "$default"
	// Function is the function's name; Qualifier its alias or version ("": $LATEST).
	Function             string `json:"function"`
	Qualifier            string `json:"qualifier,omitempty"`
	PayloadFormatVersion string `json:"payloadFormatVersion"` // "2.0" or "1.0"
	// TimeoutInMillis is the integration's timeout (SAM's HttpApi TimeoutInMillis): API
	// Gateway answers 504 (REST) or 503 (HTTP) when the function has not answered by then.
	// 0: the longest, MaxTimeout.
	TimeoutInMillis int `json:"timeoutInMillis,omitempty"`
}

// MaxTimeout is the longest integration timeout of each protocol, API Gateway's defaults.
func MaxTimeout(protocol string) int {
	if protocol == ProtocolREST {
		return 29000
	}
	return 30000
}

// Key is the route's key as API Gateway shows it: "GET /items/{id}", or "$default".
func (r Route) Key() string {
	if r.Path == DefaultRoute {
		return DefaultRoute
	}
	return r.Method + " " + r.Path
}

// Methods are the methods a route may name.
var Methods = []string{"ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}

// ValidMethod reports whether m is one of Methods.
func ValidMethod(m string) bool {
	for _, x := range Methods {
		if m == x {
			return true
		}
	}
	return false
}

var (
	literalPart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*,;=:@-]+$`) })
	paramName   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]+$`) })
)

// segment is one part of a route's path: a literal, a {param} or a greedy {name+}.
type segment struct {
	lit    string
	param  string
	greedy bool
}

// kind orders segments by how specific they are: a literal, then a parameter, then greedy.
func (s segment) kind() int {
	switch {
	case s.greedy:
		return 0
	case s.param != "":
		return 1
	}
	return 2
}

// parsePath splits a route's path into its segments; "/" has none.
func parsePath(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q must begin with /", p)
	}
	if p == "/" {
		return nil, nil
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	seen := map[string]bool{}
	for i, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("%q has an empty segment", p)
		}
		inner, ok := strings.CutPrefix(part, "{")
		if !ok {
			if !literalPart().MatchString(part) {
				return nil, fmt.Errorf("%q has invalid characters in segment %q", p, part)
			}
			segs = append(segs, segment{lit: part})
			continue
		}
		inner, ok = strings.CutSuffix(inner, "}")
		if !ok {
			return nil, fmt.Errorf("%q: segment %q is not a whole {param}", p, part)
		}
		name, greedy := strings.CutSuffix(inner, "+")
		if !paramName().MatchString(name) {
			return nil, fmt.Errorf("%q: parameter name %q is invalid", p, name)
		}
		if greedy && i != len(parts)-1 {
			return nil, fmt.Errorf("%q: the greedy parameter {%s+} must be the last segment", p, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%q names the parameter %q twice", p, name)
		}
		seen[name] = true
		segs = append(segs, segment{param: name, greedy: greedy})
	}
	return segs, nil
}

// CheckPath reports whether p is a valid route path for protocol: "/…" with literal,
// {param} and a last {name+} segments, or (HTTP APIs) "$default".
func CheckPath(protocol, p string) error {
	if p == DefaultRoute {
		if protocol != ProtocolHTTP {
			return fmt.Errorf("$default is a route of HTTP APIs only")
		}
		return nil
	}
	_, err := parsePath(p)
	return err
}

// Shape is a path with its parameters' names removed ("/items/{}"), which two routes of one
// method must not share.
func Shape(p string) string {
	segs, err := parsePath(p)
	if err != nil {
		return p
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch {
		case s.greedy:
			b.WriteString("{+}")
		case s.param != "":
			b.WriteString("{}")
		default:
			b.WriteString(s.lit)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
