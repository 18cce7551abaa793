package cwlogs

import (
	"math"
	"strconv"
	"strings"
)

// spaced is a space-delimited pattern: its fields in order ("..." for any number of fields) and
// the conditions of each element (all must hold), each an OR of ANDs over named fields.
type spaced struct {
	fields []string       // names; "..." matches any number of the message's fields
	conds  [][][]spacedOp // per element: OR of AND groups
}

// spacedOp is one condition: the field name OP value (string values may start or end with '*').
type spacedOp struct {
	field string
	c     jsonCond // reuses the JSON condition's comparison rules
}

// parseSpaced parses "[a, b = x*, ..., c > 10 && c < 20]": each comma-separated element names a
// field, optionally with conditions joined by && and ||; "..." stands for any fields.
func parseSpaced(s string) (*Pattern, error) {
	if !strings.HasSuffix(s, "]") {
		return nil, patternErr("a space-delimited pattern must end with ']'")
	}
	p := &spaced{}
	for _, elem := range splitTop(s[1 : len(s)-1]) {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			// An unnamed field: AWS's "[..., request=*.html*, status_code=4*,]" ends with one.
			p.fields = append(p.fields, "$"+strconv.Itoa(len(p.fields)+1))
			continue
		}
		if elem == "..." {
			p.fields = append(p.fields, "...")
			continue
		}
		// Every name an element mentions is a field, in order of first mention: AWS's
		// "[…, status_code = 4* && bytes > 1000]" names two.
		var or [][]spacedOp
		for _, alt := range strings.Split(elem, "||") {
			var and []spacedOp
			for _, c := range strings.Split(alt, "&&") {
				name, op, err := parseSpacedCond(strings.TrimSpace(c))
				if err != nil {
					return nil, err
				}
				if !containsField(p.fields, name) {
					p.fields = append(p.fields, name)
				}
				if op != nil {
					and = append(and, *op)
				}
			}
			or = append(or, and)
		}
		p.conds = append(p.conds, or)
	}
	if len(p.fields) == 0 {
		return nil, patternErr("a space-delimited pattern needs at least one field")
	}
	return &Pattern{fields: p}, nil
}

func containsField(fields []string, name string) bool {
	for _, f := range fields {
		if f == name {
			return true
		}
	}
	return false
}

// splitTop splits on commas outside double quotes.
func splitTop(s string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// parseSpacedCond parses "name", "name = value", "name != value" or "name OP number".
func parseSpacedCond(c string) (string, *spacedOp, error) {
	i := 0
	for i < len(c) && isNameChar(c[i]) {
		i++
	}
	name := c[:i]
	if name == "" {
		return "", nil, patternErr("a field must have a name, not %q", c)
	}
	rest := strings.TrimSpace(c[i:])
	if rest == "" {
		return name, nil, nil
	}
	op := &spacedOp{field: name}
	for _, o := range []string{"!=", "<=", ">=", "=", "<", ">"} {
		if strings.HasPrefix(rest, o) {
			op.c.op = o
			rest = strings.TrimSpace(rest[len(o):])
			break
		}
	}
	if op.c.op == "" || rest == "" {
		return "", nil, patternErr("bad condition %q", c)
	}
	jp := &jsonParser{s: rest}
	if err := jp.value(&op.c); err != nil {
		return "", nil, err
	}
	if jp.space(); jp.i != len(jp.s) {
		return "", nil, patternErr("bad condition %q", c)
	}
	return name, op, nil
}

// splitFields splits a message into space-delimited fields; "[...]" and "\"...\"" runs are one
// field each (without their brackets or quotes).
func splitFields(msg string) []string {
	var out []string
	msg = strings.TrimSpace(msg)
	for i := 0; i < len(msg); {
		switch c := msg[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '"' || c == '[':
			end := byte('"')
			if c == '[' {
				end = ']'
			}
			j := strings.IndexByte(msg[i+1:], end)
			if j < 0 {
				out = append(out, msg[i:])
				return out
			}
			out = append(out, msg[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(msg) && msg[j] != ' ' && msg[j] != '\t' {
				j++
			}
			out = append(out, msg[i:j])
			i = j
		}
	}
	return out
}

func (p *spaced) match(msg string) bool {
	words := splitFields(msg)
	vals := map[string]string{}
	var try func(fi, wi int) bool
	try = func(fi, wi int) bool {
		if fi == len(p.fields) {
			return wi == len(words) && p.eval(vals)
		}
		if p.fields[fi] == "..." {
			for k := wi; k <= len(words); k++ {
				if try(fi+1, k) {
					return true
				}
			}
			return false
		}
		if wi >= len(words) {
			return false
		}
		vals[p.fields[fi]] = words[wi]
		return try(fi+1, wi+1)
	}
	return try(0, 0)
}

func (p *spaced) eval(vals map[string]string) bool {
	for _, or := range p.conds {
		if !anyGroup(or, vals) {
			return false
		}
	}
	return true
}

func anyGroup(or [][]spacedOp, vals map[string]string) bool {
	for _, and := range or {
		ok := true
		for _, op := range and {
			if !op.test(vals[op.field]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (op spacedOp) test(v string) bool {
	c := &op.c
	if c.isN {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return false
		}
		return compare(c.op, f, c.num)
	}
	return c.matchString(v) == (c.op == "=")
}
