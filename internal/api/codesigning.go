package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) createCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.CodeSigningInput
	if err := decodeBody(r, 1<<16, "CreateCodeSigningConfig", &in); err != nil {
		return err
	}
	out, err := a.ctl.CodeSigning.Create(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.CodeSigning.Get(r.Context(), r.PathValue("arn"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) updateCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.CodeSigningInput
	if err := decodeBody(r, 1<<16, "UpdateCodeSigningConfig", &in); err != nil {
		return err
	}
	out, err := a.ctl.CodeSigning.Update(r.Context(), r.PathValue("arn"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.CodeSigning.Delete(r.Context(), r.PathValue("arn")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listCodeSigningConfigs(w http.ResponseWriter, r *http.Request, _ string) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	out, err := a.ctl.CodeSigning.List(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) listFunctionsByCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	out, err := a.ctl.CodeSigning.Functions(r.Context(), r.PathValue("arn"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) putFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		CodeSigningConfigArn *string `json:"CodeSigningConfigArn"`
	}
	if err := decodeBody(r, 1<<16, "PutFunctionCodeSigningConfig", &in); err != nil {
		return err
	}
	out, err := a.ctl.CodeSigning.Bind(r.Context(), a.target(r), in.CodeSigningConfigArn)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.CodeSigning.Binding(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.CodeSigning.Unbind(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
