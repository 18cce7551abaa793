package api

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

var aliasPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

type aliasInput struct {
	Name            string                     `json:"Name"`
	FunctionVersion *string                    `json:"FunctionVersion"`
	Description     *string                    `json:"Description"`
	RoutingConfig   *lambda.AliasRoutingConfig `json:"RoutingConfig"`
	RevisionId      string                     `json:"RevisionId"`
}

func (a *API) aliasNotFound(name, alias string) *apierr.Error {
	return apierr.ResourceNotFound("Alias not found: %s", a.account.FunctionARN(name, alias))
}

// checkAlias validates an alias against the function's versions.
func (a *API) checkAlias(r *http.Request, name string, al *lambda.Alias) error {
	if !aliasPattern.MatchString(al.Name) || isNumber(al.Name) || al.Name == lambda.LatestVersion {
		return apierr.Validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)", al.Name)
	}
	if err := lambda.ValidateDescription(al.Description); err != nil {
		return err
	}
	exists := func(v string) error {
		if v == lambda.LatestVersion {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return apierr.Validation("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)", v)
		}
		if _, _, err := a.store.Versions().Get(r.Context(), name, n); errors.Is(err, store.ErrNotFound) {
			return apierr.ResourceNotFound("Function not found: %s", a.account.FunctionARN(name, v))
		} else if err != nil {
			return err
		}
		return nil
	}
	if err := exists(al.FunctionVersion); err != nil {
		return err
	}
	if rc := al.RoutingConfig; rc != nil && len(rc.AdditionalVersionWeights) > 0 {
		if len(rc.AdditionalVersionWeights) > 1 {
			return apierr.InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1")
		}
		if al.FunctionVersion == lambda.LatestVersion {
			return apierr.InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
		}
		for v, w := range rc.AdditionalVersionWeights {
			if w < 0 || w > 1 {
				return apierr.Validation("1 validation error detected: Value '%v' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]", w)
			}
			if v == al.FunctionVersion {
				return apierr.InvalidParameterValue("Invalid function version %s. Function version %s is already included in routing configuration.", v, v)
			}
			if v == lambda.LatestVersion {
				return apierr.InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
			}
			if err := exists(v); err != nil {
				return err
			}
		}
	} else {
		al.RoutingConfig = nil
	}
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func (a *API) createAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	var in aliasInput
	if err := decodeBody(r, 1<<16, "CreateAlias", &in); err != nil {
		return err
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	if in.FunctionVersion == nil {
		return apierr.Validation("1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null")
	}
	al := &lambda.Alias{Name: in.Name, FunctionVersion: *in.FunctionVersion, RoutingConfig: in.RoutingConfig,
		AliasArn: a.account.FunctionARN(name, in.Name), RevisionId: uuid.NewString()}
	if in.Description != nil {
		al.Description = *in.Description
	}
	if err := a.checkAlias(r, name, al); err != nil {
		return err
	}
	rev, err := a.store.Aliases().Create(r.Context(), name, al)
	if errors.Is(err, store.ErrExists) {
		return apierr.ResourceConflict("Alias already exists: %s", al.AliasArn)
	}
	if err != nil {
		return err
	}
	a.await(r, invoke.Aliases, rev)
	return writeJSON(w, http.StatusCreated, al)
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	al, err := a.store.Aliases().Get(r.Context(), f.Config.FunctionName, r.PathValue("alias"))
	if errors.Is(err, store.ErrNotFound) {
		return apierr.ResourceNotFound("Cannot find alias arn: %s", a.account.FunctionARN(f.Config.FunctionName, r.PathValue("alias")))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, al.Alias)
}

func (a *API) updateAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	var in aliasInput
	if err := decodeBody(r, 1<<16, "UpdateAlias", &in); err != nil {
		return err
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	name, aliasName := f.Config.FunctionName, r.PathValue("alias")
	for attempt := 0; ; attempt++ {
		cur, err := a.store.Aliases().Get(r.Context(), name, aliasName)
		if errors.Is(err, store.ErrNotFound) {
			return a.aliasNotFound(name, aliasName)
		}
		if err != nil {
			return err
		}
		if in.RevisionId != "" && in.RevisionId != cur.RevisionId {
			return apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
		}
		next := *cur.Alias
		set(&next.FunctionVersion, in.FunctionVersion)
		set(&next.Description, in.Description)
		if in.RoutingConfig != nil {
			next.RoutingConfig = in.RoutingConfig
		}
		next.RevisionId = uuid.NewString()
		if err := a.checkAlias(r, name, &next); err != nil {
			return err
		}
		rev, err := a.store.Aliases().Update(r.Context(), name, &next, cur.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		a.await(r, invoke.Aliases, rev)
		return writeJSON(w, http.StatusOK, next)
	}
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	name, aliasName := f.Config.FunctionName, r.PathValue("alias")
	_, err = a.store.Aliases().Get(r.Context(), name, aliasName)
	if errors.Is(err, store.ErrNotFound) {
		// DeleteAlias is idempotent on AWS: deleting a missing alias succeeds.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	rev, err := a.store.Aliases().Delete(r.Context(), name, aliasName)
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNoContent) // deleted meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	a.await(r, invoke.Aliases, rev)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listAliases(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	maxItems, marker, err := paging(r)
	if err != nil {
		return err
	}
	all, err := a.store.Aliases().List(r.Context(), f.Config.FunctionName)
	if err != nil {
		return err
	}
	version := r.URL.Query().Get("FunctionVersion")
	out := struct {
		Aliases    []lambda.Alias `json:"Aliases"`
		NextMarker string         `json:"NextMarker,omitempty"`
	}{Aliases: []lambda.Alias{}}
	for _, al := range all {
		if (marker != "" && al.Name <= marker) || (version != "" && al.FunctionVersion != version) {
			continue
		}
		if len(out.Aliases) == maxItems {
			out.NextMarker = out.Aliases[len(out.Aliases)-1].Name
			break
		}
		out.Aliases = append(out.Aliases, *al)
	}
	return writeJSON(w, http.StatusOK, out)
}
