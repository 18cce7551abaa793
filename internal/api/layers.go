package api

import (
	"net/http"
	"strconv"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

// layerLink is l as the API returns it: with its package's download link (Content.Location),
// which names this server.
func (a *API) layerLink(r *http.Request, l *control.Layer) lambda.LayerVersion {
	v := l.Version
	v.Content.Location = a.link(r, "/flint/v1/layers/"+l.Name+"/versions/"+strconv.Itoa(v.Version)+"/content")
	return v
}

func (a *API) publishLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	// Not control.LayerInput embedded: a decoding error would then name its fields
	// 'LayerInput.Description'.
	var in struct {
		Content                 *control.CodeInput `json:"Content"`
		Description             string             `json:"Description"`
		CompatibleRuntimes      []string           `json:"CompatibleRuntimes"`
		CompatibleArchitectures []string           `json:"CompatibleArchitectures"`
		LicenseInfo             string             `json:"LicenseInfo"`
	}
	if err := decodeBody(r, maxCodeRequest, "PublishLayerVersion", &in); err != nil {
		return err
	}
	var content control.Package
	if in.Content != nil {
		content = a.ctl.Code.Input(in.Content)
	}
	l, err := a.ctl.Layers.Publish(r.Context(), r.PathValue("layer"), control.LayerInput{Description: in.Description,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo}, content)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.layerLink(r, l))
}

func (a *API) getLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	l, err := a.ctl.Layers.Get(r.Context(), r.PathValue("layer"), r.PathValue("version"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.layerLink(r, l))
}

func (a *API) layerContent(w http.ResponseWriter, r *http.Request, _ string) error {
	return writeZip(w)(a.ctl.Layers.Content(r.Context(), r.PathValue("layer"), r.PathValue("version")))
}

func (a *API) deleteLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	if _, err := a.ctl.Layers.Delete(r.Context(), r.PathValue("layer"), r.PathValue("version")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func layerFilter(r *http.Request) control.LayerFilter {
	q := r.URL.Query()
	return control.LayerFilter{Runtime: q.Get("CompatibleRuntime"), Architecture: q.Get("CompatibleArchitecture")}
}

// listLayers is ListLayers and GetLayerVersionByArn (GET /layers?find=LayerVersion&Arn=…).
func (a *API) listLayers(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	if q.Get("find") == "LayerVersion" {
		l, err := a.ctl.Layers.GetByARN(r.Context(), q.Get("Arn"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a.layerLink(r, l))
	}
	p, err := paging(r)
	if err != nil {
		return err
	}
	out, err := a.ctl.Layers.List(r.Context(), layerFilter(r), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) listLayerVersions(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Layers.Versions(r.Context(), r.PathValue("layer"), layerFilter(r), func() (control.Page, error) { return paging(r) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
