package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

func (a *API) publishVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.PublishInput
	if err := decodeBody(r, 1<<16, "PublishVersion", &in); err != nil {
		return err
	}
	c, err := a.ctl.Versions.Publish(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Versions.List(r.Context(), a.target(r), func() (control.Page, error) { return paging(r) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// lookupQualified reads the configuration a qualifier names for a handler that has not moved
// to control yet.
//
// Deprecated: the services resolve their Target with control's resolver.
func (a *API) lookupQualified(r *http.Request) (*lambda.Function, error) {
	name, qualifier, err := a.functionName(r)
	if err != nil {
		return nil, err
	}
	f, err := a.store.Functions().Get(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, a.notFound(name, "")
	}
	if err != nil {
		return nil, err
	}
	if qualifier == "" || qualifier == lambda.LatestVersion {
		return f.Function, nil
	}
	version := qualifier
	if _, err := strconv.Atoi(qualifier); err != nil {
		al, err := a.store.Aliases().Get(r.Context(), name, qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return nil, a.notFound(name, qualifier)
		}
		if err != nil {
			return nil, err
		}
		version = al.FunctionVersion
	}
	if version == lambda.LatestVersion {
		return f.Function, nil
	}
	n, _ := strconv.Atoi(version)
	v, _, err := a.store.Versions().Get(r.Context(), name, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, a.notFound(name, qualifier)
	}
	return v, err
}
