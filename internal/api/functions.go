package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

// maxCodeRequest is the largest CreateFunction/UpdateFunctionCode body AWS accepts (50 MB of zip,
// base64-encoded, plus the rest of the request).
const maxCodeRequest = 69905067

func (a *API) createFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.FunctionInput
	if err := decodeBody(r, maxCodeRequest, "CreateFunction", &in); err != nil {
		return err
	}
	c, err := a.ctl.Functions.Create(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.ctl.Functions.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	out := struct {
		Configuration lambda.FunctionConfiguration `json:"Configuration"`
		Code          struct {
			RepositoryType string `json:"RepositoryType"`
			Location       string `json:"Location"`
		} `json:"Code"`
		Tags        map[string]string            `json:"Tags,omitempty"`
		Concurrency *control.FunctionConcurrency `json:"Concurrency,omitempty"`
	}{Configuration: f.Config, Tags: f.Tags}
	if f.ReservedConcurrency != nil {
		out.Concurrency = &control.FunctionConcurrency{ReservedConcurrentExecutions: f.ReservedConcurrency}
	}
	out.Code.RepositoryType = "S3"
	out.Code.Location = a.link(r, "/flint/v1/functions/"+f.Config.FunctionName+"/code")
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.ctl.Functions.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f.Config)
}

func (a *API) functionCode(w http.ResponseWriter, r *http.Request, _ string) error {
	return writeZip(w)(a.ctl.Functions.Package(r.Context(), a.target(r)))
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request, _ string) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	out, err := a.ctl.Functions.List(r.Context(), r.URL.Query().Get("FunctionVersion"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Functions.Delete(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) updateFunctionCode(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.CodeUpdate
	if err := decodeBody(r, maxCodeRequest, "UpdateFunctionCode", &in); err != nil {
		return err
	}
	c, err := a.ctl.Functions.UpdateCode(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.ConfigUpdate
	if err := decodeBody(r, 1<<20, "UpdateFunctionConfiguration", &in); err != nil {
		return err
	}
	c, err := a.ctl.Functions.UpdateConfiguration(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) getAccountSettings(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Functions.AccountSettings(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// functionLogs streams the function's log records; control only says whether it exists.
func (a *API) functionLogs(w http.ResponseWriter, r *http.Request, _ string) error {
	name, err := a.ctl.Functions.Logs(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	a.logs.WriteHTTP(w, r, name)
	return nil
}

// validateTags checks TagResource's tags (tags.go) until tags move to control.
func validateTags(tags map[string]string) error {
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 {
			return apierr.InvalidParameterValue("Tag keys must be 1 to 128 characters and values at most 256 characters.")
		}
	}
	return nil
}
