package api

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// lookupQualified reads the configuration a qualifier names: $LATEST, a published version, or
// the version an alias points to (its primary version).
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

type publishVersionInput struct {
	CodeSha256  string  `json:"CodeSha256"`
	Description *string `json:"Description"`
	RevisionId  string  `json:"RevisionId"`
}

func (a *API) publishVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	var in publishVersionInput
	if err := decodeBody(r, 1<<16, "PublishVersion", &in); err != nil {
		return err
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	v, err := a.publish(r, f, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v.Config)
}

// publish snapshots $LATEST as the next version, unless nothing changed since the newest one
// (then Lambda returns that version).
func (a *API) publish(r *http.Request, f store.Function, in publishVersionInput) (*lambda.Function, error) {
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		if in.RevisionId != "" && in.RevisionId != f.Config.RevisionId {
			return nil, apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
		}
		if in.CodeSha256 != "" && in.CodeSha256 != f.Config.CodeSha256 {
			return nil, apierr.PreconditionFailed("CodeSha256 (%s) is different from current CodeSha256 in $LATEST (%s). Please try again with the CodeSha256 in $LATEST.", in.CodeSha256, f.Config.CodeSha256)
		}
		name := f.Config.FunctionName
		if f.LastVersion > 0 {
			last, _, err := a.store.Versions().Get(ctx, name, f.LastVersion)
			if err == nil && sameVersion(last, f.Function) {
				return last, nil
			}
		}
		n := f.LastVersion + 1
		v := *f.Function
		v.Config.Environment = cloneEnv(f.Config.Environment)
		v.Config.Version = strconv.Itoa(n)
		v.Config.FunctionArn = a.account.FunctionARN(name, v.Config.Version)
		v.Config.RevisionId = uuid.NewString()
		v.Config.LastModified = lambda.FormatTime(time.Now())
		v.ReservedConcurrency, v.LastVersion, v.Tags = nil, 0, nil
		if in.Description != nil {
			v.Config.Description = *in.Description
		}
		// Claim the number on the function first, so two publishers never share one.
		next := *f.Function
		next.LastVersion = n
		rev, err := a.store.Functions().Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = a.store.Functions().Get(ctx, name); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		vrev, err := a.store.Versions().Create(ctx, &v, n)
		if err != nil {
			return nil, err
		}
		a.await(r, invoke.Functions, rev)
		a.await(r, invoke.Versions, vrev)
		return &v, nil
	}
}

// sameVersion reports whether $LATEST has neither code nor configuration changes since v.
func sameVersion(v, latest *lambda.Function) bool {
	a, b := v.Config, latest.Config
	for _, c := range []*lambda.FunctionConfiguration{&a, &b} {
		c.Version, c.FunctionArn, c.RevisionId, c.LastModified = "", "", "", ""
		c.State, c.LastUpdateStatus = "", ""
	}
	return reflect.DeepEqual(a, b)
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	vs, err := a.store.Versions().List(r.Context(), f.Config.FunctionName)
	if err != nil {
		return err
	}
	all := append([]*lambda.Function{f.Function}, vs...)
	out := struct {
		Versions   []lambda.FunctionConfiguration `json:"Versions"`
		NextMarker string                         `json:"NextMarker,omitempty"`
	}{Versions: []lambda.FunctionConfiguration{}}
	started := marker == ""
	for _, v := range all {
		if !started {
			started = v.Config.Version == marker
			continue
		}
		if len(out.Versions) == maxItems {
			out.NextMarker = out.Versions[len(out.Versions)-1].Version
			break
		}
		c := v.Config
		if c.Version == lambda.LatestVersion {
			c.FunctionArn = a.account.FunctionARN(c.FunctionName, lambda.LatestVersion)
		}
		c.State, c.LastUpdateStatus = "", ""
		out.Versions = append(out.Versions, c)
	}
	return writeJSON(w, http.StatusOK, out)
}

// deleteVersion deletes a published version unless an alias points to it.
func (a *API) deleteVersion(w http.ResponseWriter, r *http.Request, name, qualifier string) error {
	n, err := strconv.Atoi(qualifier)
	if err != nil {
		return apierr.InvalidParameterValue("Deletion of aliases is not supported by DeleteFunction; use DeleteAlias.")
	}
	if _, err := a.store.Functions().Get(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		return a.notFound(name, "")
	}
	_, _, err = a.store.Versions().Get(r.Context(), name, n)
	if errors.Is(err, store.ErrNotFound) {
		return a.notFound(name, qualifier)
	}
	if err != nil {
		return err
	}
	aliases, err := a.store.Aliases().List(r.Context(), name)
	if err != nil {
		return err
	}
	var using []string
	for _, al := range aliases {
		if al.FunctionVersion == qualifier {
			using = append(using, al.AliasArn)
			continue
		}
		if al.RoutingConfig != nil {
			if _, ok := al.RoutingConfig.AdditionalVersionWeights[qualifier]; ok {
				using = append(using, al.AliasArn)
			}
		}
	}
	if len(using) > 0 {
		return apierr.ResourceConflict("Unable to delete version because the following aliases reference it: %v", using)
	}
	rev, err := a.store.Versions().Delete(r.Context(), name, n)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return a.notFound(name, qualifier)
		}
		return err
	}
	a.await(r, invoke.Versions, rev)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
