package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// layerLink is l as the API returns it: with its package's download link (Content.Location),
// which names this server.
func (a *API) layerLink(r *http.Request, l *control.Layer) lambda.LayerVersion {
	v := l.Version
	v.Content.Location = a.link(r, "/flint/v1/layers/"+l.Name+"/versions/"+strconv.Itoa(v.Version)+"/content")
	return v
}

// layerPackage is PublishLayerVersion's Content as the Layers service takes it: checked and
// staged by api's code store (code.go), which keeps it from collection until it is referenced.
// Once that store is the control plane's Code service, this adapter goes.
type layerPackage struct {
	a    *API
	code *functionCode
}

func (p layerPackage) Validate() (artifact.Info, error) { return p.a.validateCode(p.code) }

func (p layerPackage) Stage(ctx context.Context, info artifact.Info) (control.StagedPackage, error) {
	s, err := p.a.storeCode(ctx, p.code.ZipFile, info)
	if err != nil {
		return nil, err
	}
	return stagedPackage{s}, nil
}

type stagedPackage struct{ s *stagedCode }

func (p stagedPackage) Key() string              { return p.s.key }
func (p stagedPackage) Keep()                    { p.s.keep() }
func (p stagedPackage) Drop(ctx context.Context) { p.s.drop(ctx) }

func (a *API) publishLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	// Not control.LayerInput embedded: a decoding error would then name its fields
	// 'LayerInput.Description'.
	var in struct {
		Content                 *functionCode `json:"Content"`
		Description             string        `json:"Description"`
		CompatibleRuntimes      []string      `json:"CompatibleRuntimes"`
		CompatibleArchitectures []string      `json:"CompatibleArchitectures"`
		LicenseInfo             string        `json:"LicenseInfo"`
	}
	if err := decodeBody(r, maxCodeRequest, "PublishLayerVersion", &in); err != nil {
		return err
	}
	var content control.Package
	if in.Content != nil {
		content = layerPackage{a, in.Content}
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
	b, err := a.ctl.Layers.Content(r.Context(), r.PathValue("layer"), r.PathValue("version"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return nil
}

func (a *API) deleteLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	found, err := a.ctl.Layers.Delete(r.Context(), r.PathValue("layer"), r.PathValue("version"))
	if err != nil {
		return err
	}
	if found {
		a.gc.wake() // its content is kept only while a function uses it
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

// The function handlers' layer checks (functions.go) stay here until they call the Functions
// service, which does them itself; the lead removes these then.

var layerArnPattern = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]{1,140})(?::(\d+))?$`)

const maxLayers = 5

// checkLayerMerge refuses layers that cannot be extracted together into /opt: each layer's
// symlinks were checked on their own when it was published, but one layer's link can lead
// elsewhere once another layer's files sit beside it ("esc" -> "s/s/../.." with "s" -> "."
// from another layer leaves /opt). The layers are unpacked (usually already) and their merged
// tree checked without writing it.
func (a *API) checkLayerMerge(ctx context.Context, arns, keys []string) error {
	if len(keys) < 2 {
		return nil
	}
	dirs := make([]string, 0, len(keys))
	for _, k := range keys {
		d, err := a.code.Ensure(ctx, k, a.limits, func(ctx context.Context) ([]byte, error) { return a.store.Code().Get(ctx, k) })
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
	}
	err := artifact.CheckMerge(dirs)
	if errors.Is(err, artifact.ErrUnsafeSymlink) {
		why := strings.TrimSuffix(err.Error(), ": "+artifact.ErrUnsafeSymlink.Error())
		return apierr.InvalidParameterValue("Layers %s cannot be used together: extracted in order into /opt, they make a symbolic link that leads outside /opt (%s).", strings.Join(arns, ", "), why)
	}
	return err
}

// resolveLayers checks a function's Layers (at most 5 existing layer versions) and returns their
// configuration entries, code keys and unzipped total.
func (a *API) resolveLayers(r *http.Request, arns []string) ([]lambda.FunctionLayer, []string, int64, error) {
	if len(arns) > maxLayers {
		return nil, nil, 0, apierr.InvalidParameterValue("Cannot reference more than %d layers.", maxLayers)
	}
	var (
		cfg   []lambda.FunctionLayer
		keys  []string
		total int64
	)
	for _, arn := range arns {
		m := layerArnPattern.FindStringSubmatch(arn)
		if m == nil || m[4] == "" {
			return nil, nil, 0, apierr.Validation("1 validation error detected: Value '[%s]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+]", arn)
		}
		if err := a.account.ResolveLayer(arn, m[1], m[2]); err != nil {
			return nil, nil, 0, err
		}
		n, _ := strconv.Atoi(m[4])
		l, err := a.store.Layers().Get(r.Context(), m[3], n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, 0, apierr.InvalidParameterValue("Layer version %s does not exist.", arn)
		}
		if err != nil {
			return nil, nil, 0, err
		}
		cfg = append(cfg, lambda.FunctionLayer{Arn: arn, CodeSize: l.Layer.Content.CodeSize})
		keys = append(keys, l.CodeKey)
		total += l.UnzippedSize
	}
	return cfg, keys, total, nil
}
