package control

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

// layerStore is the layer versions' repository (store.Layers).
type layerStore interface {
	Next(ctx context.Context, name string) (int, error)
	Put(ctx context.Context, name string, l *lambda.StoredLayer) error
	Get(ctx context.Context, name string, n int) (*lambda.StoredLayer, error)
	GetRevision(ctx context.Context, name string, n int) (*lambda.StoredLayer, uint64, error)
	Update(ctx context.Context, name string, l *lambda.StoredLayer, rev uint64) error
	Delete(ctx context.Context, name string, n int) error
	List(ctx context.Context, name string) ([]*lambda.StoredLayer, error)
}

// packageReader reads stored code packages (store.Code).
type packageReader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// Layers serves PublishLayerVersion, GetLayerVersion (by name and by ARN), ListLayerVersions,
// ListLayers, DeleteLayerVersion, the layer version permissions (layerpolicies.go) and the
// download of a layer version's package.
type Layers struct {
	account  lambda.Account
	layers   layerStore
	packages packageReader
	// collector is woken after a delete: a version's package is kept only while a function
	// uses it (Code).
	collector interface{ Wake() }
}

// Package is a request's code package as the code store takes it: Validate checks it without
// storing anything; Stage stores it, kept from collection until the record that references it
// is written (Keep) or the request is refused (Drop).
type Package interface {
	Validate() (artifact.Info, error)
	Stage(ctx context.Context, info artifact.Info) (StagedPackage, error)
}

// StagedPackage is a package stored for a request that has not yet written its record.
// Exactly one of Keep and Drop must be called.
type StagedPackage interface {
	Key() string
	Keep()
	Drop(ctx context.Context)
}

// LayerInput is PublishLayerVersion's request but its Content (a Package).
type LayerInput struct {
	Description             string
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
	LicenseInfo             string
}

// Layer is a layer version as the API returns it, but for its download link (Content.Location),
// which is HTTP's to make from the layer's Name and the version.
type Layer struct {
	Name    string
	Version lambda.LayerVersion
}

// LayerFilter keeps the layer versions compatible with a runtime and an architecture ("" for any).
type LayerFilter struct {
	Runtime      string
	Architecture string
}

// LayerItem is one layer in ListLayers's answer.
type LayerItem struct {
	LayerName             string              `json:"LayerName"`
	LayerArn              string              `json:"LayerArn"`
	LatestMatchingVersion lambda.LayerVersion `json:"LatestMatchingVersion"`
}

// LayerList is ListLayers's answer.
type LayerList struct {
	Layers     []LayerItem `json:"Layers"`
	NextMarker string      `json:"NextMarker,omitempty"`
}

// LayerVersionList is ListLayerVersions's answer.
type LayerVersionList struct {
	LayerVersions []lambda.LayerVersion `json:"LayerVersions"`
	NextMarker    string                `json:"NextMarker,omitempty"`
}

var (
	layerNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,140}$`) })
	layerARNPattern  = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]{1,140})(?::(\d+))?$`)
	})
)

func (s *Layers) arn(name string) string {
	return "arn:aws:lambda:" + s.account.Region + ":" + s.account.ID + ":layer:" + name
}

func layerNotFound() *apierr.Error {
	return apierr.ResourceNotFound("The resource you requested does not exist.")
}

// here refuses a layer ARN of another region (no such layer here) or account (IAM's denial: no
// layer permission can name Flint's one account).
func (s *Layers) here(arn, region, account string) error {
	if region != s.account.Region {
		return layerNotFound()
	}
	if account != s.account.ID {
		return s.account.ResolveLayer(arn, region, account)
	}
	return nil
}

// name parses a LayerName: a name or an unversioned layer ARN of this region and account.
func (s *Layers) name(layer string) (string, error) {
	if m := layerARNPattern().FindStringSubmatch(layer); m != nil && m[4] == "" {
		return m[3], s.here(layer, m[1], m[2])
	}
	if !layerNamePattern().MatchString(layer) {
		return "", apierr.Validation("1 validation error detected: Value '%s' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+", layer)
	}
	return layer, nil
}

// layerName is the name in a layer's ARN.
func layerName(arn string) string {
	m := layerARNPattern().FindStringSubmatch(arn)
	if m == nil {
		return ""
	}
	return m[3]
}

// view is a stored layer version as the API returns it.
func view(l *lambda.StoredLayer) *Layer {
	return &Layer{Name: layerName(l.Layer.LayerArn), Version: l.Layer}
}

// Publish stores a new version of layer with content's package; content nil is a request
// without Content. Everything that can refuse the request is checked before the package is
// stored, and the package goes again when the version cannot be written.
func (s *Layers) Publish(ctx context.Context, layer string, in LayerInput, content Package) (*Layer, error) {
	name, err := s.name(layer)
	if err != nil {
		return nil, err
	}
	if content == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'content' failed to satisfy constraint: Member must not be null")
	}
	if err := lambda.ValidateDescription(in.Description); err != nil {
		return nil, err
	}
	if len(in.CompatibleRuntimes) > 15 || len(in.CompatibleArchitectures) > 2 || len(in.LicenseInfo) > 512 {
		return nil, apierr.Validation("1 validation error detected: CompatibleRuntimes (15), CompatibleArchitectures (2) or LicenseInfo (512 characters) over their limits")
	}
	// AWS reports both lists at once, each whole, when any of their members is not allowed.
	var parts []string
	for _, rt := range in.CompatibleRuntimes {
		if _, ok := runtimes.Lookup(rt); !ok {
			parts = append(parts, fmt.Sprintf("Value '%s' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: %s",
				lambda.FormatList(in.CompatibleRuntimes), lambda.FormatList(runtimes.Names())))
			break
		}
	}
	for _, arch := range in.CompatibleArchitectures {
		if arch != "x86_64" && arch != "arm64" {
			parts = append(parts, fmt.Sprintf("Value '%s' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
				lambda.FormatList(in.CompatibleArchitectures)))
			break
		}
	}
	if err := validationErrors(parts); err != nil {
		return nil, err
	}
	info, err := content.Validate()
	if err != nil {
		return nil, err
	}
	staged, err := content.Stage(ctx, info)
	if err != nil {
		return nil, err
	}
	n, err := s.layers.Next(ctx, name)
	if err != nil {
		staged.Drop(ctx)
		return nil, err
	}
	arn := s.arn(name)
	l := &lambda.StoredLayer{CodeKey: staged.Key(), UnzippedSize: info.UnzippedSize, Layer: lambda.LayerVersion{
		Content:  lambda.LayerContent{CodeSha256: info.CodeSha256, CodeSize: info.Size},
		LayerArn: arn, LayerVersionArn: arn + ":" + strconv.Itoa(n), Description: in.Description,
		CreatedDate: lambda.FormatTime(time.Now()), Version: n, CompatibleRuntimes: in.CompatibleRuntimes,
		CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo}}
	if err := s.layers.Put(ctx, name, l); err != nil {
		staged.Drop(ctx)
		return nil, err
	}
	staged.Keep()
	return &Layer{Name: name, Version: l.Layer}, nil
}

// version reads version of layer (a name or an unversioned layer ARN).
func (s *Layers) version(ctx context.Context, layer, version string) (string, int, *lambda.StoredLayer, error) {
	name, err := s.name(layer)
	if err != nil {
		return "", 0, nil, err
	}
	n, err := strconv.Atoi(version)
	if err != nil {
		return "", 0, nil, apierr.Validation("1 validation error detected: Value '%s' at 'versionNumber' failed to satisfy constraint: Member must be a positive number", version)
	}
	if n < 1 {
		return "", 0, nil, apierr.InvalidParameterValue("Layer Version Cannot be less than 1")
	}
	l, err := s.layers.Get(ctx, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return name, n, nil, layerNotFound()
	}
	return name, n, l, err
}

// Get returns version of layer.
func (s *Layers) Get(ctx context.Context, layer, version string) (*Layer, error) {
	_, _, l, err := s.version(ctx, layer, version)
	if err != nil {
		return nil, err
	}
	return view(l), nil
}

// GetByARN returns the layer version a layer version ARN names (GetLayerVersionByArn).
func (s *Layers) GetByARN(ctx context.Context, arn string) (*Layer, error) {
	m := layerARNPattern().FindStringSubmatch(arn)
	if m == nil || m[4] == "" {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'arn' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", arn, layerVersionARNModel)
	}
	if err := s.here(arn, m[1], m[2]); err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(m[4])
	l, err := s.layers.Get(ctx, m[3], n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, layerNotFound()
	}
	if err != nil {
		return nil, err
	}
	return view(l), nil
}

// Content returns the package of version of layer.
func (s *Layers) Content(ctx context.Context, layer, version string) ([]byte, error) {
	_, _, l, err := s.version(ctx, layer, version)
	if err != nil {
		return nil, err
	}
	return s.packages.Get(ctx, l.CodeKey)
}

// Delete removes version of layer; deleting one that does not exist succeeds, as on Lambda.
// found reports whether there was one: its package may now be referenced by nothing.
func (s *Layers) Delete(ctx context.Context, layer, version string) (found bool, err error) {
	name, n, _, err := s.version(ctx, layer, version)
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := s.layers.Delete(ctx, name, n); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if s.collector != nil {
		s.collector.Wake()
	}
	return true, nil
}

// layerVersionARNModel is AWS's pattern for a layer version ARN.
const layerVersionARNModel = `(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)`

// check refuses filter values AWS's model does not allow.
func (f LayerFilter) check() error {
	if f.Runtime != "" {
		if _, ok := runtimes.Lookup(f.Runtime); !ok {
			return apierr.Validation("1 validation error detected: Value '%s' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: %s", f.Runtime, lambda.FormatList(runtimes.Names()))
		}
	}
	if a := f.Architecture; a != "" && a != "x86_64" && a != "arm64" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'compatibleArchitecture' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]", a)
	}
	return nil
}

func (f LayerFilter) matches(l *lambda.StoredLayer) bool {
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
	return has(l.Layer.CompatibleRuntimes, f.Runtime) && has(l.Layer.CompatibleArchitectures, f.Architecture)
}

// List returns a page of the layers, by name, each with its latest version that f keeps.
func (s *Layers) List(ctx context.Context, f LayerFilter, p Page) (*LayerList, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	all, err := s.layers.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := &LayerList{Layers: []LayerItem{}}
	latest := map[string]*lambda.StoredLayer{}
	var names []string
	for _, l := range all {
		if !f.matches(l) {
			continue
		}
		n := layerName(l.Layer.LayerArn)
		if latest[n] == nil {
			names = append(names, n)
		}
		latest[n] = l // sorted by version: the last one wins
	}
	for _, n := range names {
		if p.Marker != "" && n <= p.Marker {
			continue
		}
		if len(out.Layers) == p.MaxItems {
			out.NextMarker = out.Layers[len(out.Layers)-1].LayerName
			break
		}
		v := latest[n].Layer
		v.Content = lambda.LayerContent{}
		out.Layers = append(out.Layers, LayerItem{LayerName: n, LayerArn: v.LayerArn, LatestMatchingVersion: v})
	}
	return out, nil
}

// Versions returns a page of layer's versions that f keeps, newest first as Lambda lists them;
// the marker is the last version of the previous page. page reads the request's paging
// parameters once the layer's name is checked, so that a bad name is what a request with both
// faults hears of.
func (s *Layers) Versions(ctx context.Context, layer string, f LayerFilter, page func() (Page, error)) (*LayerVersionList, error) {
	name, err := s.name(layer)
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	p, err := page()
	if err != nil {
		return nil, err
	}
	all, err := s.layers.List(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &LayerVersionList{LayerVersions: []lambda.LayerVersion{}}
	for i := len(all) - 1; i >= 0; i-- {
		l := all[i]
		if !f.matches(l) {
			continue
		}
		if m, err := strconv.Atoi(p.Marker); err == nil && l.Layer.Version >= m {
			continue
		}
		if len(out.LayerVersions) == p.MaxItems {
			out.NextMarker = strconv.Itoa(out.LayerVersions[len(out.LayerVersions)-1].Version)
			break
		}
		v := l.Layer
		v.Content = lambda.LayerContent{}
		out.LayerVersions = append(out.LayerVersions, v)
	}
	return out, nil
}
