package cwlogs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Pattern is a parsed CloudWatch Logs filter pattern ("Filter pattern syntax for metric
// filters, subscription filters, filter log events, and Live Tail"): terms and quoted phrases
// (all must occur; case-sensitive substrings), terms excluded with "-", alternatives with "?"
// (at least one must occur), a regular expression between "%" signs, or a JSON pattern in
// braces ({ $.level = "ERROR" && $.latency > 500 }). An empty pattern matches every event.
// Space-delimited patterns ([ip, user, ..., status_code = 4*, bytes > 1000]) name the
// message's space-separated fields (a [...] or "..." run is one field) and set conditions on them.
type Pattern struct {
	all, not, any []string
	re            *regexp.Regexp
	json          jsonExpr
	fields        *spaced
}

// errPattern reports a pattern that does not parse.
var errPattern = errors.New("invalid filter pattern")

func patternErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPattern, fmt.Sprintf(format, args...))
}

// ParsePattern parses a filter pattern.
func ParsePattern(s string) (*Pattern, error) {
	t := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(t, "{"):
		return parseJSONPattern(t)
	case strings.HasPrefix(t, "["):
		return parseSpaced(t)
	case len(t) >= 2 && strings.HasPrefix(t, "%") && strings.HasSuffix(t, "%"):
		return parseRegex(t[1 : len(t)-1])
	}
	return parseTerms(t)
}

// regexChars are what AWS allows inside %…%: letters, digits, its symbols and its operators
// (no parentheses).
func validRegexChar(r rune) bool {
	return r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(`_#=@/;,-: ^$?[]{}|\*+.`, r))
}

func parseRegex(expr string) (*Pattern, error) {
	if expr == "" {
		return nil, patternErr("empty regular expression")
	}
	for _, r := range expr {
		if !validRegexChar(r) {
			return nil, patternErr("character %q is not supported in a regular expression", r)
		}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, patternErr("%v", err)
	}
	return &Pattern{re: re}, nil
}

func parseTerms(s string) (*Pattern, error) {
	p := &Pattern{}
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return p, nil
		}
		mode := byte(0)
		if s[i] == '-' || s[i] == '?' {
			mode = s[i]
			i++
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i >= len(s) {
				return nil, patternErr("%q must be followed by a term", string(mode))
			}
		}
		var term string
		if s[i] == '"' {
			end, val, err := quoted(s, i)
			if err != nil {
				return nil, err
			}
			term, i = val, end
		} else {
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '"' {
				j++
			}
			term, i = s[i:j], j
		}
		if term == "" {
			continue // "" is the empty pattern
		}
		switch mode {
		case '-':
			p.not = append(p.not, term)
		case '?':
			p.any = append(p.any, term)
		default:
			p.all = append(p.all, term)
		}
	}
}

// quoted reads the double-quoted string starting at s[i] (backslash escapes a quote or a
// backslash) and returns the index after it and its value.
func quoted(s string, i int) (int, string, error) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; c {
		case '\\':
			if j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\') {
				j++
				b.WriteByte(s[j])
				continue
			}
			b.WriteByte(c)
		case '"':
			return j + 1, b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return 0, "", patternErr("unterminated quoted string")
}

// Match reports whether an event's message matches the pattern.
func (p *Pattern) Match(msg string) bool {
	switch {
	case p.re != nil:
		return p.re.MatchString(msg)
	case p.fields != nil:
		return p.fields.match(msg)
	case p.json != nil:
		doc, ok := parseJSONMessage(msg)
		return ok && p.json.eval(doc)
	}
	for _, t := range p.all {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range p.not {
		if strings.Contains(msg, t) {
			return false
		}
	}
	if len(p.any) == 0 {
		return true
	}
	for _, t := range p.any {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// JSON patterns.

// jsonExpr is a JSON pattern's boolean expression.
type jsonExpr interface{ eval(doc any) bool }

type jsonOr []jsonExpr
type jsonAnd []jsonExpr

func (o jsonOr) eval(doc any) bool {
	for _, e := range o {
		if e.eval(doc) {
			return true
		}
	}
	return false
}

func (a jsonAnd) eval(doc any) bool {
	for _, e := range a {
		if !e.eval(doc) {
			return false
		}
	}
	return true
}

// jsonCond is one condition: SELECTOR OP VALUE, SELECTOR IS NULL/TRUE/FALSE, or SELECTOR
// [NOT] EXISTS.
type jsonCond struct {
	path []step
	op   string // = != < > <= >= isnull istrue isfalse exists notexists
	str  string // the value as written (quotes removed)
	num  float64
	isN  bool // the value is a number
	pre  bool // a leading '*': the value may be preceded by anything
	suf  bool // a trailing '*': the value may be followed by anything
}

type step struct {
	key   string
	index int // -1: a key
}

func (c *jsonCond) eval(doc any) bool {
	v, found := resolve(doc, c.path)
	switch c.op {
	case "exists":
		return found
	case "notexists":
		return !found
	}
	if !found {
		return false
	}
	switch c.op {
	case "isnull":
		return v == nil
	case "istrue":
		return v == true
	case "isfalse":
		return v == false
	}
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return false
		}
		if c.isN {
			return compare(c.op, f, c.num)
		}
		if c.op == "=" || c.op == "!=" {
			return c.matchString(x.String()) == (c.op == "=")
		}
		return false
	case string:
		if c.op == "=" || c.op == "!=" {
			return c.matchString(x) == (c.op == "=")
		}
		return false
	case bool:
		if c.op == "=" || c.op == "!=" {
			return c.matchString(strconv.FormatBool(x)) == (c.op == "=")
		}
		return false
	}
	return false // null, an object or an array: not a value node
}

func compare(op string, a, b float64) bool {
	switch op {
	case "=":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case ">":
		return a > b
	case "<=":
		return a <= b
	case ">=":
		return a >= b
	}
	return false
}

// matchString compares s with the value, a '*' at either end matching any text there (an
// asterisk inside the value is itself, as AWS documents: Ev*ent matches only "Ev*ent").
func (c *jsonCond) matchString(s string) bool {
	v := c.str
	switch {
	case c.pre && c.suf:
		return strings.Contains(s, v)
	case c.pre:
		return strings.HasSuffix(s, v)
	case c.suf:
		return strings.HasPrefix(s, v)
	}
	return s == v
}

func resolve(doc any, path []step) (any, bool) {
	cur := doc
	for _, st := range path {
		if st.index >= 0 {
			arr, ok := cur.([]any)
			if !ok || st.index >= len(arr) {
				return nil, false
			}
			cur = arr[st.index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[st.key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// parseJSONMessage decodes an event's message as JSON (numbers kept exact).
func parseJSONMessage(msg string) (any, bool) {
	msg = strings.TrimSpace(msg)
	if msg == "" || msg[0] != '{' && msg[0] != '[' {
		return nil, false
	}
	d := json.NewDecoder(strings.NewReader(msg))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if d.More() {
		return nil, false
	}
	return v, true
}

// jsonParser is a recursive-descent parser over a JSON pattern's text.
type jsonParser struct {
	s string
	i int
}

func parseJSONPattern(s string) (*Pattern, error) {
	if !strings.HasSuffix(s, "}") {
		return nil, patternErr("a JSON pattern must end with '}'")
	}
	p := &jsonParser{s: s[1 : len(s)-1]}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, patternErr("unexpected %q in JSON pattern", p.s[p.i:])
	}
	return &Pattern{json: e}, nil
}

func (p *jsonParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonParser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *jsonParser) or() (jsonExpr, error) {
	var terms jsonOr
	for {
		e, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if !p.eat("||") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *jsonParser) and() (jsonExpr, error) {
	var terms jsonAnd
	for {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if !p.eat("&&") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *jsonParser) unary() (jsonExpr, error) {
	if p.eat("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, patternErr("missing ')' in JSON pattern")
		}
		return e, nil
	}
	return p.cond()
}

func (p *jsonParser) cond() (jsonExpr, error) {
	path, err := p.selector()
	if err != nil {
		return nil, err
	}
	c := &jsonCond{path: path}
	p.space()
	rest := p.s[p.i:]
	for _, kw := range []struct{ text, op string }{
		{"IS NULL", "isnull"}, {"IS TRUE", "istrue"}, {"IS FALSE", "isfalse"},
		{"NOT EXISTS", "notexists"}, {"EXISTS", "exists"},
	} {
		if hasWord(rest, kw.text) {
			p.i += len(kw.text)
			c.op = kw.op
			return c, nil
		}
	}
	for _, op := range []string{"!=", "<=", ">=", "=", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			c.op = op
			p.i += len(op)
			break
		}
	}
	if c.op == "" {
		return nil, patternErr("expected an operator after the selector in JSON pattern")
	}
	if err := p.value(c); err != nil {
		return nil, err
	}
	return c, nil
}

// hasWord reports whether s begins with the keyword kw, not followed by a name character.
func hasWord(s, kw string) bool {
	if !strings.HasPrefix(s, kw) {
		return false
	}
	return len(s) == len(kw) || !isNameChar(s[len(kw)])
}

func isNameChar(c byte) bool {
	return c == '_' || c == '-' || c == '@' || c == ':' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// selector reads $ followed by .name and [N] steps.
func (p *jsonParser) selector() ([]step, error) {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '$' {
		return nil, patternErr("a JSON pattern condition must start with a selector ($.field)")
	}
	p.i++
	var path []step
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '.':
			p.i++
			j := p.i
			for j < len(p.s) && isNameChar(p.s[j]) {
				j++
			}
			if j == p.i {
				return nil, patternErr("empty property name in selector")
			}
			path = append(path, step{key: p.s[p.i:j], index: -1})
			p.i = j
		case '[':
			j := strings.IndexByte(p.s[p.i:], ']')
			if j < 0 {
				return nil, patternErr("missing ']' in selector")
			}
			n, err := strconv.Atoi(p.s[p.i+1 : p.i+j])
			if err != nil || n < 0 {
				return nil, patternErr("array index must be a number in selector")
			}
			path = append(path, step{index: n})
			p.i += j + 1
		default:
			if len(path) == 0 {
				return nil, patternErr("a selector must name a property ($.field)")
			}
			return path, nil
		}
	}
	if len(path) == 0 {
		return nil, patternErr("a selector must name a property ($.field)")
	}
	return path, nil
}

// value reads a condition's value: a quoted string, a number, or a bare word; a string may
// begin or end with the '*' wildcard.
func (p *jsonParser) value(c *jsonCond) error {
	p.space()
	if p.i >= len(p.s) {
		return patternErr("missing value in JSON pattern")
	}
	var raw string
	quotedVal := p.s[p.i] == '"'
	if quotedVal {
		end, v, err := quoted(p.s, p.i)
		if err != nil {
			return err
		}
		raw, p.i = v, end
	} else {
		j := p.i
		for j < len(p.s) && !strings.ContainsRune(" \t\r\n)&|", rune(p.s[j])) {
			j++
		}
		raw, p.i = p.s[p.i:j], j
		if raw == "" {
			return patternErr("missing value in JSON pattern")
		}
	}
	if !quotedVal {
		if f, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			c.num, c.isN = f, true
		}
	}
	if !c.isN && c.op != "=" && c.op != "!=" {
		return patternErr("%s needs a number, not %q", c.op, raw)
	}
	if !c.isN {
		if strings.HasPrefix(raw, "*") {
			c.pre, raw = true, raw[1:]
		}
		if strings.HasSuffix(raw, "*") && raw != "" {
			c.suf, raw = true, raw[:len(raw)-1]
		}
		if raw == "" && c.pre { // "*": any value
			c.suf = true
		}
	}
	c.str = raw
	return nil
}
