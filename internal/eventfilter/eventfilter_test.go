package eventfilter

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	event := `{"state": "on", "price": 15.5, "count": 3, "name": "Alice", "file": "src/lib/a.png",
		"region": "us-east-1", "ip": "10.0.0.7", "tags": ["a", "b"], "empty": "", "none": null, "ok": true,
		"order": {"type": "buy", "items": [{"sku": "x1"}, {"sku": "y2"}]}}`
	ev, err := Decode([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"state": ["on"]}`, true},
		{`{"state": ["off", "on"]}`, true},
		{`{"state": ["off"]}`, false},
		{`{"state": ["on"], "name": ["Bob"]}`, false},
		{`{"count": [3]}`, true},
		{`{"count": [3.0]}`, true},
		{`{"count": ["3"]}`, false},
		{`{"price": [{"numeric": [">", 10, "<=", 20]}]}`, true},
		{`{"price": [{"numeric": [">=", 16]}]}`, false},
		{`{"price": [{"numeric": ["=", 15.5]}]}`, true},
		{`{"name": [{"numeric": [">", 0]}]}`, false},
		{`{"name": [{"prefix": "Al"}]}`, true},
		{`{"name": [{"prefix": {"equals-ignore-case": "al"}}]}`, true},
		{`{"name": [{"suffix": "ce"}]}`, true},
		{`{"name": [{"suffix": {"equals-ignore-case": "CE"}}]}`, true},
		{`{"name": [{"equals-ignore-case": "ALICE"}]}`, true},
		{`{"file": [{"wildcard": "*/lib/*.png"}]}`, true},
		{`{"file": [{"wildcard": "*/bin/*"}]}`, false},
		{`{"state": [{"anything-but": "off"}]}`, true},
		{`{"state": [{"anything-but": ["on", "off"]}]}`, false},
		{`{"count": [{"anything-but": [1, 2]}]}`, true},
		{`{"region": [{"anything-but": {"prefix": "us-"}}]}`, false},
		{`{"region": [{"anything-but": {"suffix": "-2"}}]}`, true},
		{`{"name": [{"anything-but": {"equals-ignore-case": ["alice", "bob"]}}]}`, false},
		{`{"missing": [{"anything-but": "x"}]}`, false},
		{`{"name": [{"exists": true}]}`, true},
		{`{"missing": [{"exists": false}]}`, true},
		{`{"name": [{"exists": false}]}`, false},
		{`{"none": [null]}`, true},
		{`{"empty": [""]}`, true},
		{`{"ok": [true]}`, true},
		{`{"ok": [false]}`, false},
		{`{"ip": [{"cidr": "10.0.0.0/24"}]}`, true},
		{`{"ip": [{"cidr": "10.0.1.0/24"}]}`, false},
		{`{"tags": ["b"]}`, true},
		{`{"tags": ["c"]}`, false},
		{`{"order": {"type": ["buy"]}}`, true},
		{`{"order": {"items": {"sku": ["y2"]}}}`, true},
		{`{"order": {"items": {"sku": ["z9"]}}}`, false},
		{`{"state": {"x": ["y"]}}`, false},
		{`{"$or": [{"state": ["off"]}, {"name": ["Alice"]}]}`, true},
		{`{"$or": [{"state": ["off"]}, {"name": ["Bob"]}]}`, false},
		{`{"order": {"$or": [{"type": ["sell"]}, {"items": {"sku": ["x1"]}}]}}`, true},
	} {
		p, err := Compile(tc.pattern)
		if err != nil {
			t.Errorf("Compile(%s): %v", tc.pattern, err)
			continue
		}
		if got := p.Match(ev); got != tc.want {
			t.Errorf("%s: matched %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, pattern := range []string{
		``, `[]`, `"x"`, `{}`, `{"a": "b"}`, `{"a": 1}`, `{"a": [{}]}`, `{"a": [{"prefix": 1}]}`,
		`{"a": [{"numeric": [">", "x"]}]}`, `{"a": [{"numeric": ["<", 5, ">", 1]}]}`, `{"a": [{"numeric": [">", 5, "<", 1]}]}`,
		`{"a": [{"numeric": ["~", 5]}]}`, `{"a": [{"exists": "yes"}]}`, `{"a": [{"cidr": "10.0.0.0/99"}]}`,
		`{"a": [{"anything-but": []}]}`, `{"a": [{"anything-but": {"numeric": [">", 1]}}]}`, `{"a": [{"unknown": 1}]}`,
		`{"$or": [{"a": ["b"]}]}`, `{"$or": "x"}`, `{"a": [{"prefix": "x", "suffix": "y"}]}`, `{"a": ["b"]} x`,
		`{"a": [{"wildcard": "a**b"}]}`, `{"a": ["` + strings.Repeat("x", MaxPatternLength) + `"]}`,
	} {
		if _, err := Compile(pattern); !errors.Is(err, ErrInvalid) {
			t.Errorf("Compile(%q) = %v, want an invalid pattern", pattern, err)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"*c", "abc", true}, {"a*c", "ac", true}, {"a*c", "ab", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false}, {`a\*`, "a*", true}, {`a\*`, "ab", false}, {"abc", "abc", true},
		{"ab*ba", "aba", false},
	} {
		if got := wildcardMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("wildcard %q on %q = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}
