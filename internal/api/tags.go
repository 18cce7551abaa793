package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

// tagTarget is the function a tags request names: by its ARN, in the path's {arn}.
func (a *API) tagTarget(r *http.Request) control.Target {
	t := a.target(r)
	t.Name = r.PathValue("arn")
	return t
}

func (a *API) listTags(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Tags.List(r.Context(), a.tagTarget(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) tagResource(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.TagsInput
	if err := decodeBody(r, 1<<16, "TagResource", &in); err != nil {
		return err
	}
	if err := a.ctl.Tags.Tag(r.Context(), a.tagTarget(r), in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) untagResource(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Tags.Untag(r.Context(), a.tagTarget(r), r.URL.Query()["tagKeys"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
