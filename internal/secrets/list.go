package secrets

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flint-run/flint/internal/store"
)

// defaultPage is the page size without MaxResults, and the largest MaxResults allowed.
const defaultPage = 100

type listSecretsInput struct {
	Filters                []filter `json:"Filters"`
	IncludePlannedDeletion bool     `json:"IncludePlannedDeletion"`
	MaxResults             *int     `json:"MaxResults"`
	NextToken              string   `json:"NextToken"`
	SortBy                 string   `json:"SortBy"`
	SortOrder              string   `json:"SortOrder"`
}

type listSecretsOutput struct {
	SecretList []secretEntry `json:"SecretList"`
	NextToken  string        `json:"NextToken,omitempty"`
}

// filter is a ListSecrets filter: a secret passes when any of Values matches (a value with a
// leading '!' matches when its match fails); every filter must pass.
type filter struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

var filterKeys = []string{"description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"}

func (s *Service) listSecrets(ctx context.Context, in *listSecretsInput) (*listSecretsOutput, error) {
	for i, f := range in.Filters {
		if !slices.Contains(filterKeys, f.Key) {
			return nil, errValidation("1 validation error detected: Value '%s' at 'filters.%d.member.key' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
				f.Key, i+1, strings.Join(filterKeys, ", "))
		}
	}
	by, err := sortKey(in.SortBy)
	if err != nil {
		return nil, err
	}
	desc := true // newest first unless asked otherwise
	switch in.SortOrder {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return nil, errValidation("1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]", in.SortOrder)
	}

	keys, err := s.store.Keys(ctx, ">")
	if err != nil {
		return nil, errInternal(err)
	}
	var recs []*record
	for _, k := range keys {
		doc, _, err := s.store.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, errInternal(err)
		}
		var r record
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, errInternal(fmt.Errorf("decode secret %s: %w", k, err))
		}
		if s.purgeDue(ctx, &r) || (r.deleted() && !in.IncludePlannedDeletion) || !s.matches(&r, in.Filters) {
			continue
		}
		recs = append(recs, &r)
	}
	slices.SortFunc(recs, func(a, b *record) int {
		c := by(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.Name, b.Name))
	})
	recs, next, err := page(recs, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &listSecretsOutput{SecretList: make([]secretEntry, 0, len(recs)), NextToken: next}
	for _, r := range recs {
		e := entry(r)
		e.SecretVersionsToStages, e.VersionIdsToStages = e.VersionIdsToStages, nil
		out.SecretList = append(out.SecretList, e)
	}
	return out, nil
}

// sortKey compares secrets by a ListSecrets SortBy. Flint does not track last access (it would
// cost a write per read), so last-accessed-date orders by creation.
func sortKey(by string) (func(a, b *record) int, error) {
	switch by {
	case "", "created-date", "last-accessed-date":
		return func(a, b *record) int { return a.Created.Compare(b.Created) }, nil
	case "last-changed-date":
		return func(a, b *record) int { return a.Changed.Compare(b.Changed) }, nil
	case "name":
		return func(a, b *record) int { return strings.Compare(a.Name, b.Name) }, nil
	}
	return nil, errValidation("1 validation error detected: Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]", by)
}

func (s *Service) matches(r *record, filters []filter) bool {
	for _, f := range filters {
		pass := false
		for _, v := range f.Values {
			v, negated := strings.CutPrefix(v, "!")
			if s.hit(r, f.Key, v) != negated {
				pass = true
				break
			}
		}
		if !pass {
			return false
		}
	}
	return true
}

// hit applies one filter value as AWS documents it: prefix matches, case-insensitive for
// description and all, case-sensitive for the rest.
func (s *Service) hit(r *record, key, v string) bool {
	anyTag := func(f func(t tag) string) bool {
		return slices.ContainsFunc(r.Tags, func(t tag) bool { return strings.HasPrefix(f(t), v) })
	}
	switch key {
	case "name":
		return strings.HasPrefix(r.Name, v)
	case "description":
		return strings.HasPrefix(strings.ToLower(r.Description), strings.ToLower(v))
	case "tag-key":
		return anyTag(func(t tag) string { return t.Key })
	case "tag-value":
		return anyTag(func(t tag) string { return t.Value })
	case "primary-region":
		return strings.HasPrefix(s.region, v)
	case "all":
		// Every word of the value must begin some word of the secret's attributes.
		words := strings.Fields(strings.ToLower(strings.Join(append([]string{r.Name, r.Description}, tagWords(r.Tags)...), " ")))
		for _, w := range strings.Fields(strings.ToLower(v)) {
			if !slices.ContainsFunc(words, func(a string) bool { return strings.HasPrefix(a, w) }) {
				return false
			}
		}
		return true
	}
	return false // owning-service: Flint's secrets are owned by no service
}

func tagWords(tags []tag) []string {
	out := make([]string, 0, 2*len(tags))
	for _, t := range tags {
		out = append(out, t.Key, t.Value)
	}
	return out
}

// page cuts one page from items. The token is the offset of the next page: like AWS's, a list
// that changes between pages may repeat or skip an item, never fail.
func page[T any](items []T, limit *int, token string) ([]T, string, error) {
	n := defaultPage
	if limit != nil {
		if *limit < 1 || *limit > defaultPage {
			return nil, "", errValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *limit, defaultPage)
		}
		n = *limit
	}
	start := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			start, err = strconv.Atoi(string(b))
		}
		if err != nil || start < 0 {
			return nil, "", smError("InvalidNextTokenException", "The NextToken value is invalid.")
		}
	}
	start = min(start, len(items))
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	return out, next, nil
}
