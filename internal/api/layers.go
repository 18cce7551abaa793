package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

var (
	layerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,140}$`)
	layerArnPattern  = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]{1,140})(?::(\d+))?$`)
)

const maxLayers = 5

func (a *API) layerArn(name string) string {
	return "arn:aws:lambda:" + a.account.Region + ":" + a.account.ID + ":layer:" + name
}

// layerHere refuses a layer ARN of another region (no such layer here) or account (IAM's
// denial: no layer permission can name Flint's one account).
func (a *API) layerHere(arn, region, account string) error {
	if region != a.account.Region {
		return a.layerNotFound()
	}
	if account != a.account.ID {
		return a.account.ResolveLayer(arn, region, account)
	}
	return nil
}

// layerName reads {layer}: a name or a layer ARN.
func (a *API) layerName(r *http.Request) (string, error) {
	v := r.PathValue("layer")
	if m := layerArnPattern.FindStringSubmatch(v); m != nil && m[4] == "" {
		return m[3], a.layerHere(v, m[1], m[2])
	}
	if !layerNamePattern.MatchString(v) {
		return "", apierr.Validation("1 validation error detected: Value '%s' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+", v)
	}
	return v, nil
}

func (a *API) layerNotFound() *apierr.Error {
	return apierr.ResourceNotFound("The resource you requested does not exist.")
}

// layerView is a stored layer version as the API returns it.
func (a *API) layerView(r *http.Request, l *lambda.StoredLayer) lambda.LayerVersion {
	v := l.Layer
	v.Content.Location = a.link(r, "/flint/v1/layers/"+lastPart(v.LayerArn)+"/versions/"+strconv.Itoa(v.Version)+"/content")
	return v
}

func lastPart(arn string) string {
	m := layerArnPattern.FindStringSubmatch(arn)
	if m == nil {
		return ""
	}
	return m[3]
}

func (a *API) publishLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
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
	name, err := a.layerName(r)
	if err != nil {
		return err
	}
	if in.Content == nil {
		return apierr.Validation("1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null")
	}
	if err := lambda.ValidateDescription(in.Description); err != nil {
		return err
	}
	if len(in.CompatibleRuntimes) > 15 || len(in.CompatibleArchitectures) > 2 || len(in.LicenseInfo) > 512 {
		return apierr.Validation("1 validation error detected: CompatibleRuntimes (15), CompatibleArchitectures (2) or LicenseInfo (512 characters) over their limits")
	}
	for _, rt := range in.CompatibleRuntimes {
		if _, ok := runtimes.Lookup(rt); !ok {
			return apierr.InvalidParameterValue("Value %s at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: %v", rt, runtimes.Names())
		}
	}
	for _, arch := range in.CompatibleArchitectures {
		if arch != "x86_64" && arch != "arm64" {
			return apierr.Validation("1 validation error detected: Value '%s' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]", arch)
		}
	}
	info, err := a.validateCode(in.Content)
	if err != nil {
		return err
	}
	staged, err := a.storeCode(r.Context(), in.Content.ZipFile, info)
	if err != nil {
		return err
	}
	n, err := a.store.Layers().Next(r.Context(), name)
	if err != nil {
		staged.drop(r.Context())
		return err
	}
	arn := a.layerArn(name)
	l := &lambda.StoredLayer{CodeKey: staged.key, UnzippedSize: info.UnzippedSize, Layer: lambda.LayerVersion{
		Content:  lambda.LayerContent{CodeSha256: info.CodeSha256, CodeSize: info.Size},
		LayerArn: arn, LayerVersionArn: arn + ":" + strconv.Itoa(n), Description: in.Description,
		CreatedDate: lambda.FormatTime(time.Now()), Version: n, CompatibleRuntimes: in.CompatibleRuntimes,
		CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo}}
	if err := a.store.Layers().Put(r.Context(), name, l); err != nil {
		staged.drop(r.Context())
		return err
	}
	staged.keep()
	return writeJSON(w, http.StatusCreated, a.layerView(r, l))
}

func (a *API) layerVersion(r *http.Request) (string, int, *lambda.StoredLayer, error) {
	name, err := a.layerName(r)
	if err != nil {
		return "", 0, nil, err
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		return "", 0, nil, apierr.Validation("1 validation error detected: Value '%s' at 'versionNumber' failed to satisfy constraint: Member must be a positive number", r.PathValue("version"))
	}
	l, err := a.store.Layers().Get(r.Context(), name, n)
	if errors.Is(err, store.ErrNotFound) {
		return name, n, nil, a.layerNotFound()
	}
	return name, n, l, err
}

func (a *API) getLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	_, _, l, err := a.layerVersion(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.layerView(r, l))
}

func (a *API) layerContent(w http.ResponseWriter, r *http.Request, _ string) error {
	_, _, l, err := a.layerVersion(r)
	if err != nil {
		return err
	}
	b, err := a.store.Code().Get(r.Context(), l.CodeKey)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return nil
}

func (a *API) deleteLayerVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	name, n, _, err := a.layerVersion(r)
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
		w.WriteHeader(http.StatusNoContent) // deleting a missing version succeeds, as on Lambda
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.store.Layers().Delete(r.Context(), name, n); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	a.gc.wake() // its content is kept only while a function uses it
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listLayers is ListLayers and GetLayerVersionByArn (GET /layers?find=LayerVersion&Arn=…).
func (a *API) listLayers(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	if q.Get("find") == "LayerVersion" {
		m := layerArnPattern.FindStringSubmatch(q.Get("Arn"))
		if m == nil || m[4] == "" {
			return apierr.Validation("1 validation error detected: Value '%s' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+", q.Get("Arn"))
		}
		if err := a.layerHere(q.Get("Arn"), m[1], m[2]); err != nil {
			return err
		}
		n, _ := strconv.Atoi(m[4])
		l, err := a.store.Layers().Get(r.Context(), m[3], n)
		if errors.Is(err, store.ErrNotFound) {
			return a.layerNotFound()
		}
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a.layerView(r, l))
	}
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	all, err := a.store.Layers().List(r.Context(), "")
	if err != nil {
		return err
	}
	type item struct {
		LayerName             string              `json:"LayerName"`
		LayerArn              string              `json:"LayerArn"`
		LatestMatchingVersion lambda.LayerVersion `json:"LatestMatchingVersion"`
	}
	out := struct {
		Layers     []item `json:"Layers"`
		NextMarker string `json:"NextMarker,omitempty"`
	}{Layers: []item{}}
	latest := map[string]*lambda.StoredLayer{}
	var names []string
	for _, l := range all {
		if !matches(l, q.Get("CompatibleRuntime"), q.Get("CompatibleArchitecture")) {
			continue
		}
		n := lastPart(l.Layer.LayerArn)
		if latest[n] == nil {
			names = append(names, n)
		}
		latest[n] = l // sorted by version: the last one wins
	}
	for _, n := range names {
		if marker != "" && n <= marker {
			continue
		}
		if len(out.Layers) == maxItems {
			out.NextMarker = out.Layers[len(out.Layers)-1].LayerName
			break
		}
		v := a.layerView(r, latest[n])
		v.Content = lambda.LayerContent{}
		out.Layers = append(out.Layers, item{LayerName: n, LayerArn: v.LayerArn, LatestMatchingVersion: v})
	}
	return writeJSON(w, http.StatusOK, out)
}

func matches(l *lambda.StoredLayer, runtime, arch string) bool {
	has := func(list []string, v string) bool {
		if v == "" {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	return has(l.Layer.CompatibleRuntimes, runtime) && has(l.Layer.CompatibleArchitectures, arch)
}

func (a *API) listLayerVersions(w http.ResponseWriter, r *http.Request, _ string) error {
	name, err := a.layerName(r)
	if err != nil {
		return err
	}
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	all, err := a.store.Layers().List(r.Context(), name)
	if err != nil {
		return err
	}
	out := struct {
		LayerVersions []lambda.LayerVersion `json:"LayerVersions"`
		NextMarker    string                `json:"NextMarker,omitempty"`
	}{LayerVersions: []lambda.LayerVersion{}}
	// Newest first, as Lambda lists them.
	for i := len(all) - 1; i >= 0; i-- {
		l := all[i]
		if !matches(l, r.URL.Query().Get("CompatibleRuntime"), r.URL.Query().Get("CompatibleArchitecture")) {
			continue
		}
		if m, err := strconv.Atoi(marker); err == nil && l.Layer.Version >= m {
			continue
		}
		if len(out.LayerVersions) == maxItems {
			out.NextMarker = strconv.Itoa(out.LayerVersions[len(out.LayerVersions)-1].Version)
			break
		}
		v := a.layerView(r, l)
		v.Content = lambda.LayerContent{}
		out.LayerVersions = append(out.LayerVersions, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

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
