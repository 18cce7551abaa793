package api

import (
	"errors"
	"maps"
	"net/http"
	"regexp"
	"strings"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/store"
)

// maxTags is Lambda's limit of tags per function.
const maxTags = 50

var functionARNPattern = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:([a-zA-Z0-9-_]{1,64})$`)

// tagTarget resolves the function a tags call names by its (unqualified) ARN.
func (a *API) tagTarget(r *http.Request) (store.Function, error) {
	arn := r.PathValue("arn")
	m := functionARNPattern.FindStringSubmatch(arn)
	if m == nil {
		if strings.Contains(arn, ":function:") {
			return store.Function{}, apierr.InvalidParameterValue("Tags are not supported on function versions or aliases; use the unqualified function ARN: %s", arn)
		}
		return store.Function{}, apierr.Validation("1 validation error detected: Value '%s' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", arn)
	}
	if _, _, err := a.resolve(r, arn); err != nil {
		return store.Function{}, err
	}
	f, err := a.store.Functions().Get(r.Context(), m[2])
	if errors.Is(err, store.ErrNotFound) {
		return f, a.notFound(m[2], "")
	}
	return f, err
}

func (a *API) listTags(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.tagTarget(r)
	if err != nil {
		return err
	}
	tags := f.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"Tags": tags})
}

func (a *API) tagResource(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		Tags map[string]string `json:"Tags"`
	}
	if err := decodeBody(r, 1<<16, "TagResource", &in); err != nil {
		return err
	}
	if in.Tags == nil {
		return apierr.Validation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	if err := validateTags(in.Tags); err != nil {
		return err
	}
	for k := range in.Tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return apierr.InvalidParameterValue("Tag keys starting with aws: are reserved: %s", k)
		}
	}
	return a.updateTags(w, r, func(tags map[string]string) error {
		maps.Copy(tags, in.Tags)
		if len(tags) > maxTags {
			return apierr.InvalidParameterValue("A function can have at most %d tags.", maxTags)
		}
		return nil
	})
}

func (a *API) untagResource(w http.ResponseWriter, r *http.Request, _ string) error {
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return apierr.Validation("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	return a.updateTags(w, r, func(tags map[string]string) error {
		for _, k := range keys {
			delete(tags, k)
		}
		return nil
	})
}

// updateTags applies change to the function's tags (retrying on a concurrent write) and answers
// 204. Tags live on $LATEST's record; its environments stay warm.
func (a *API) updateTags(w http.ResponseWriter, r *http.Request, change func(map[string]string) error) error {
	for range 5 {
		f, err := a.tagTarget(r)
		if err != nil {
			return err
		}
		next := *f.Function
		next.Tags = maps.Clone(f.Tags)
		if next.Tags == nil {
			next.Tags = map[string]string{}
		}
		if err := change(next.Tags); err != nil {
			return err
		}
		if len(next.Tags) == 0 {
			next.Tags = nil
		}
		rev, err := a.store.Functions().Update(r.Context(), &next, f.Revision)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		a.await(r, invoke.Functions, rev)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return apierr.ResourceConflict("The function was modified concurrently; try again.")
}
