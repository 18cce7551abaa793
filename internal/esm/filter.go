package esm

import (
	"encoding/json"
	"fmt"

	"github.com/flint-run/flint/internal/eventfilter"
	"github.com/flint-run/flint/internal/lambda"
)

// filters is a mapping's FilterCriteria compiled (control validated them when it stored them).
type filters []*eventfilter.Pattern

func compileFilters(fc *lambda.FilterCriteria) (filters, error) {
	if fc == nil {
		return nil, nil
	}
	var fs filters
	for _, f := range fc.Filters {
		p, err := eventfilter.Compile(f.Pattern)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", f.Pattern, err)
		}
		fs = append(fs, p)
	}
	return fs, nil
}

// match reports whether a record passes: no filters, or one of them matches view.
func (fs filters) match(view map[string]any) bool {
	if len(fs) == 0 {
		return true
	}
	for _, p := range fs {
		if p.Match(view) {
			return true
		}
	}
	return false
}

// dataValue is a message body or a record's data as filters see it: its JSON value when it is
// JSON, else the string (a pattern of nested fields then matches nothing, as on Lambda).
func dataValue(b []byte) any {
	if v, err := eventfilter.Decode(b); err == nil {
		return v
	}
	return string(b)
}

// recordBody is the body of an SQS API queue's record.
func recordBody(rec json.RawMessage) []byte {
	var r struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(rec, &r)
	return []byte(r.Body)
}
