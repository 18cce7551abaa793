// Package eventfilter compiles and matches the event patterns of Lambda's event filtering
// (an event source mapping's FilterCriteria) and SNS subscription filter policies: the
// EventBridge pattern grammar. A pattern is a JSON object whose keys name the event's fields;
// a nested object matches a nested object, and an array lists the rules one of which the
// field's value must satisfy:
//
//	"state": ["on", "off"]                      exact strings (also numbers, true/false, null)
//	"name": [{"prefix": "us-"}]                 also suffix, and {"prefix": {"equals-ignore-case": "US-"}}
//	"name": [{"equals-ignore-case": "alice"}]
//	"file": [{"wildcard": "*/lib/*.png"}]       '*' is any run of characters, '\*' a star
//	"state": [{"anything-but": ["on", "off"]}]  also one value, numbers, {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": …}
//	"price": [{"numeric": [">", 10, "<=", 20]}] also "=", "<", ">="
//	"sku": [{"exists": true}]                   false: the field is absent
//	"ip": [{"cidr": "10.0.0.0/24"}]             IPv4 and IPv6
//	"$or": [{"a": [1]}, {"b": [2]}]             at any level: one of the alternatives
//
// Several keys must all match (and). A field whose value in the event is an array matches a
// rule when one of its elements does. Only exists:false matches an absent field.
package eventfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// MaxPatternLength is the longest pattern Lambda accepts (a Filter's Pattern).
const MaxPatternLength = 4096

// Pattern is a compiled pattern; it is safe for concurrent use.
type Pattern struct{ root *object }

// object is an object pattern: every field must match, and one alternative of each $or.
type object struct {
	fields []field
	ors    [][]*object
}

type field struct {
	name  string
	sub   *object // a nested object pattern; else rules
	rules []rule
}

// rule is one element of a field's array of rules.
type rule struct {
	kind    ruleKind
	str     string
	num     float64
	bounds  []bound
	exists  bool
	prefix  netip.Prefix
	but     []rule // anything-but: what must not match
	fold    bool   // prefix, suffix: ignoring case
	literal any    // exact: nil (null), bool, string or float64
}

type ruleKind uint8

const (
	exact ruleKind = iota
	prefixRule
	suffixRule
	foldRule
	wildcardRule
	anythingBut
	numericRule
	existsRule
	cidrRule
)

type bound struct {
	op  string
	val float64
}

// ErrInvalid is wrapped by every compile error.
var ErrInvalid = errors.New("invalid filter pattern")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Compile parses pattern.
func Compile(pattern string) (*Pattern, error) {
	if len(pattern) > MaxPatternLength {
		return nil, invalid("longer than %d characters", MaxPatternLength)
	}
	v, err := Decode([]byte(pattern))
	if err != nil {
		return nil, invalid("not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("not a JSON object")
	}
	root, err := compileObject(m)
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root}, nil
}

// Decode reads a JSON document as Match takes it (numbers kept exact as json.Number).
func Decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func compileObject(m map[string]any) (*object, error) {
	if len(m) == 0 {
		return nil, invalid("an empty object")
	}
	o := &object{}
	for name, v := range m {
		if name == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return nil, invalid("$or takes an array of at least two patterns")
			}
			var or []*object
			for _, a := range alts {
				am, ok := a.(map[string]any)
				if !ok {
					return nil, invalid("$or takes an array of objects")
				}
				sub, err := compileObject(am)
				if err != nil {
					return nil, err
				}
				or = append(or, sub)
			}
			o.ors = append(o.ors, or)
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			sub, err := compileObject(x)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, field{name: name, sub: sub})
		case []any:
			f := field{name: name}
			for _, r := range x {
				cr, err := compileRule(r)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				f.rules = append(f.rules, cr)
			}
			o.fields = append(o.fields, f)
		default:
			return nil, invalid("%s: a field's rules must be an array or an object", name)
		}
	}
	return o, nil
}

func compileRule(r any) (rule, error) {
	switch x := r.(type) {
	case nil, bool, string:
		return rule{kind: exact, literal: x}, nil
	case json.Number:
		f, err := number(x)
		if err != nil {
			return rule{}, err
		}
		return rule{kind: exact, literal: f}, nil
	case map[string]any:
		if len(x) != 1 {
			return rule{}, invalid("a rule object has exactly one operator")
		}
		for op, arg := range x {
			return compileOperator(op, arg)
		}
	}
	return rule{}, invalid("a rule is a string, number, boolean, null or one operator object")
}

func number(n json.Number) (float64, error) {
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, invalid("bad number %s", n)
	}
	return f, nil
}

func compileOperator(op string, arg any) (rule, error) {
	switch op {
	case "prefix", "suffix":
		kind := prefixRule
		if op == "suffix" {
			kind = suffixRule
		}
		switch a := arg.(type) {
		case string:
			return rule{kind: kind, str: a}, nil
		case map[string]any:
			if s, ok := a["equals-ignore-case"].(string); ok && len(a) == 1 {
				return rule{kind: kind, str: strings.ToLower(s), fold: true}, nil
			}
		}
		return rule{}, invalid("%s takes a string", op)
	case "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return rule{}, invalid("equals-ignore-case takes a string")
		}
		return rule{kind: foldRule, str: s}, nil
	case "wildcard":
		s, ok := arg.(string)
		if !ok || strings.Contains(s, "**") {
			return rule{}, invalid("wildcard takes a string without consecutive *")
		}
		return rule{kind: wildcardRule, str: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return rule{}, invalid("exists takes true or false")
		}
		return rule{kind: existsRule, exists: b}, nil
	case "cidr":
		s, ok := arg.(string)
		if !ok {
			return rule{}, invalid("cidr takes a string")
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return rule{}, invalid("cidr %q: %v", s, err)
		}
		return rule{kind: cidrRule, prefix: p.Masked()}, nil
	case "numeric":
		return compileNumeric(arg)
	case "anything-but":
		return compileAnythingBut(arg)
	}
	return rule{}, invalid("unknown operator %q", op)
}

func compileNumeric(arg any) (rule, error) {
	a, ok := arg.([]any)
	if !ok || (len(a) != 2 && len(a) != 4) {
		return rule{}, invalid("numeric takes [op, number] or [op, number, op, number]")
	}
	r := rule{kind: numericRule}
	for i := 0; i < len(a); i += 2 {
		op, ok := a[i].(string)
		n, isNum := a[i+1].(json.Number)
		if !ok || !isNum {
			return rule{}, invalid("numeric takes operators and numbers")
		}
		f, err := number(n)
		if err != nil {
			return rule{}, err
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return rule{}, invalid("numeric operator %q", op)
		}
		r.bounds = append(r.bounds, bound{op, f})
	}
	if len(r.bounds) == 2 {
		lo, hi := r.bounds[0], r.bounds[1]
		if (lo.op != ">" && lo.op != ">=") || (hi.op != "<" && hi.op != "<=") || lo.val >= hi.val {
			return rule{}, invalid("a numeric range is a lower bound (> or >=) then a greater upper bound (< or <=)")
		}
	}
	return r, nil
}

func compileAnythingBut(arg any) (rule, error) {
	r := rule{kind: anythingBut}
	switch a := arg.(type) {
	case string, json.Number:
		sub, err := compileRule(a)
		if err != nil {
			return rule{}, err
		}
		r.but = []rule{sub}
	case []any:
		if len(a) == 0 {
			return rule{}, invalid("anything-but takes a non-empty array")
		}
		for _, x := range a {
			switch x.(type) {
			case string, json.Number:
			default:
				return rule{}, invalid("anything-but takes strings or numbers")
			}
			sub, err := compileRule(x)
			if err != nil {
				return rule{}, err
			}
			r.but = append(r.but, sub)
		}
	case map[string]any:
		if len(a) != 1 {
			return rule{}, invalid("anything-but takes one operator")
		}
		for op, v := range a {
			switch op {
			case "prefix", "suffix", "wildcard":
			case "equals-ignore-case":
				if list, ok := v.([]any); ok { // a list of strings, any of which excludes
					for _, s := range list {
						str, ok := s.(string)
						if !ok {
							return rule{}, invalid("anything-but equals-ignore-case takes strings")
						}
						r.but = append(r.but, rule{kind: foldRule, str: str})
					}
					return r, nil
				}
			default:
				return rule{}, invalid("anything-but takes prefix, suffix, equals-ignore-case or wildcard, not %q", op)
			}
			sub, err := compileOperator(op, v)
			if err != nil {
				return rule{}, err
			}
			r.but = []rule{sub}
		}
	default:
		return rule{}, invalid("anything-but takes a string, a number, an array or an operator")
	}
	return r, nil
}

// Match reports whether event (as Decode returns it, or built of map[string]any, []any,
// strings, json.Number or float64, bools and nil) matches p.
func (p *Pattern) Match(event any) bool {
	m, ok := event.(map[string]any)
	return ok && p.root.match(m)
}

func (o *object) match(m map[string]any) bool {
	for _, f := range o.fields {
		v, present := m[f.name]
		if f.sub != nil {
			if !present || !matchSub(f.sub, v) {
				return false
			}
			continue
		}
		if !f.matches(v, present) {
			return false
		}
	}
	for _, alts := range o.ors {
		any := false
		for _, a := range alts {
			if a.match(m) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

func matchSub(sub *object, v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return sub.match(x)
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok && sub.match(m) {
				return true
			}
		}
	}
	return false
}

func (f field) matches(v any, present bool) bool {
	for _, r := range f.rules {
		if r.kind == existsRule {
			if r.exists == present {
				return true
			}
			continue
		}
		if !present {
			continue
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				if r.matchLeaf(e) {
					return true
				}
			}
			continue
		}
		if r.matchLeaf(v) {
			return true
		}
	}
	return false
}

func (r rule) matchLeaf(v any) bool {
	switch r.kind {
	case exact:
		switch lit := r.literal.(type) {
		case nil:
			return v == nil
		case bool:
			b, ok := v.(bool)
			return ok && b == lit
		case string:
			s, ok := v.(string)
			return ok && s == lit
		case float64:
			f, ok := toFloat(v)
			return ok && f == lit
		}
	case prefixRule, suffixRule:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if r.fold {
			s = strings.ToLower(s)
		}
		if r.kind == prefixRule {
			return strings.HasPrefix(s, r.str)
		}
		return strings.HasSuffix(s, r.str)
	case foldRule:
		s, ok := v.(string)
		return ok && strings.EqualFold(s, r.str)
	case wildcardRule:
		s, ok := v.(string)
		return ok && wildcardMatch(r.str, s)
	case numericRule:
		f, ok := toFloat(v)
		if !ok {
			return false
		}
		for _, b := range r.bounds {
			if !compare(f, b) {
				return false
			}
		}
		return true
	case cidrRule:
		s, ok := v.(string)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(s)
		return err == nil && r.prefix.Contains(a.Unmap())
	case anythingBut:
		if _, isObj := v.(map[string]any); isObj || v == nil {
			return false
		}
		for _, b := range r.but {
			if b.matchLeaf(v) {
				return false
			}
		}
		// anything-but a string list matches strings and numbers alike; a prefix or suffix
		// only strings.
		if k := r.but[0].kind; k == prefixRule || k == suffixRule || k == foldRule || k == wildcardRule {
			_, ok := v.(string)
			return ok
		}
		return true
	}
	return false
}

func compare(f float64, b bound) bool {
	switch b.op {
	case "=":
		return f == b.val
	case "<":
		return f < b.val
	case "<=":
		return f <= b.val
	case ">":
		return f > b.val
	case ">=":
		return f >= b.val
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// wildcardMatch matches s against p, where '*' is any run of characters and '\*' a star.
func wildcardMatch(p, s string) bool {
	// Split p into literal segments at unescaped stars.
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p) && p[i+1] == '*':
			cur.WriteByte('*')
			i++
		case p[i] == '*':
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(p[i])
		}
	}
	segs = append(segs, cur.String())
	if len(segs) == 1 {
		return s == segs[0]
	}
	if !strings.HasPrefix(s, segs[0]) {
		return false
	}
	s = s[len(segs[0]):]
	last := segs[len(segs)-1]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
