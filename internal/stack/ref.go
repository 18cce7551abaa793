// References between a template's resources (!Ref, !GetAtt) whose values exist only once Deploy
// has created what they name: a queue's URL, a topic's ARN, a function's ARN. The parser writes
// them as placeholders inside ordinary strings (also inside JSON documents such as a redrive
// policy), and Deploy replaces each placeholder by its value as soon as it knows it.

package stack

import (
	"fmt"
	"strings"
)

// Placeholder delimiters: private-use characters, which no template means and which JSON
// encoding leaves as they are (a NUL byte would become \u0000 inside a marshalled policy).
const (
	refOpen  = "\uE000"
	refClose = "\uE001"
)

// placeholder stands for the attribute attr of the resource with logical ID id ("" attr: the
// value of !Ref).
func placeholder(id, attr string) string {
	if attr == "" {
		return refOpen + id + refClose
	}
	return refOpen + id + "." + attr + refClose
}

// hasRef reports whether s holds a placeholder.
func hasRef(s string) bool { return strings.Contains(s, refOpen) }

// refs are the values of the references Deploy knows so far, by placeholder key ("ID" or
// "ID.Attr").
type refs map[string]string

// set records the values of one resource: ref is its !Ref value, attrs its !GetAtt ones.
func (r refs) set(id, ref string, attrs map[string]string) {
	r[id] = ref
	for a, v := range attrs {
		r[id+"."+a] = v
	}
}

// resolve replaces every placeholder in s by its value; a placeholder whose value is not known
// yet is an error naming it.
func (r refs) resolve(s string) (string, error) {
	if !hasRef(s) {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, refOpen)
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], refClose)
		if j < 0 {
			return "", fmt.Errorf("malformed reference in %q", s)
		}
		key := s[i+len(refOpen) : i+j]
		v, ok := r[key]
		if !ok {
			return "", fmt.Errorf("the value of %s is not known at this point of the deployment", describeRef(key))
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+len(refClose):]
	}
}

// resolveMap resolves every value of m, in place.
func (r refs) resolveMap(m map[string]string) error {
	for k, v := range m {
		s, err := r.resolve(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		m[k] = s
	}
	return nil
}

// describeRef renders a placeholder key as the template wrote it.
func describeRef(key string) string {
	if id, attr, ok := strings.Cut(key, "."); ok {
		return "!GetAtt " + id + "." + attr
	}
	return "!Ref " + key
}

// refIDs are the logical IDs s refers to.
func refIDs(s string) []string {
	var ids []string
	for {
		i := strings.Index(s, refOpen)
		if i < 0 {
			return ids
		}
		j := strings.Index(s[i:], refClose)
		if j < 0 {
			return ids
		}
		id, _, _ := strings.Cut(s[i+len(refOpen):i+j], ".")
		ids = append(ids, id)
		s = s[i+j+len(refClose):]
	}
}
