package control_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/store"
)

// layerPackage is a layer's package handled as the code store handles it: checked by artifact's
// rules and stored in the real store. It records what the Layers service asked of it, which
// must be nothing when the request is refused before the package.
type layerPackage struct {
	st                    *store.Store
	zip                   []byte
	staged, kept, dropped bool
	validated             bool
}

func (p *layerPackage) Validate() (artifact.Info, error) {
	p.validated = true
	info, err := artifact.Validate(p.zip, artifact.DefaultLimits())
	if err != nil {
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	return info, nil
}

func (p *layerPackage) Stage(ctx context.Context, info artifact.Info) (control.StagedPackage, error) {
	p.staged = true
	key := hex.EncodeToString(info.Sha256[:])
	if err := p.st.Code().Put(ctx, key, p.zip); err != nil {
		return nil, err
	}
	return stagedLayer{p, key}, nil
}

type stagedLayer struct {
	p   *layerPackage
	key string
}

func (s stagedLayer) Key() string          { return s.key }
func (s stagedLayer) Keep()                { s.p.kept = true }
func (s stagedLayer) Drop(context.Context) { s.p.dropped = true }

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Layers
	good := zipOf(t, map[string]string{"python/lib.py": "X = 1\n"})
	pkg := func(b []byte) *layerPackage { return &layerPackage{st: e.st, zip: b} }
	arn := "arn:aws:lambda:us-east-1:123456789012:layer:lib"

	// Refusals: the package is checked after everything else, and stored only when it is good;
	// none takes a version number.
	for _, tt := range []struct {
		name      string
		layer     string
		in        control.LayerInput
		noContent bool
		zip       []byte
		code, msg string
	}{
		{"bad name", "a!b", control.LayerInput{}, false, good, "ValidationException", "at 'layerName'"},
		{"another region", "arn:aws:lambda:eu-west-1:123456789012:layer:lib", control.LayerInput{}, false, good, "ResourceNotFoundException", "The resource you requested does not exist."},
		{"another account", "arn:aws:lambda:us-east-1:210987654321:layer:lib", control.LayerInput{}, false, good, "AccessDeniedException", "lambda:GetLayerVersion"},
		{"no content", "lib", control.LayerInput{}, true, nil, "ValidationException", "Value null at 'content'"},
		{"long description", "lib", control.LayerInput{Description: strings.Repeat("x", 257)}, false, good, "ValidationException", "at 'description'"},
		{"16 runtimes", "lib", control.LayerInput{CompatibleRuntimes: make([]string, 16)}, false, good, "ValidationException", "over their limits"},
		{"long license", "lib", control.LayerInput{LicenseInfo: strings.Repeat("x", 513)}, false, good, "ValidationException", "over their limits"},
		{"unknown runtime", "lib", control.LayerInput{CompatibleRuntimes: []string{"cobol"}}, false, good, "ValidationException", "Value '[cobol]' at 'compatibleRuntimes'"},
		{"unknown architecture", "lib", control.LayerInput{CompatibleArchitectures: []string{"mips"}}, false, good, "ValidationException", "Value '[mips]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"},
		{"not a zip", "lib", control.LayerInput{}, false, []byte("hello"), "InvalidParameterValueException", "Could not unzip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pkg(tt.zip)
			var content control.Package = p
			if tt.noContent {
				content = nil
			}
			_, err := svc.Publish(ctx, tt.layer, tt.in, content)
			wantErr(t, err, tt.code, tt.msg)
			if p.staged || p.kept || p.dropped || p.validated != (tt.name == "not a zip") {
				t.Fatalf("a refused request used its package: %+v", p)
			}
		})
	}

	// Published versions are numbered from 1; the package is kept and can be read back.
	p1 := pkg(good)
	l, err := svc.Publish(ctx, "lib", control.LayerInput{Description: "first", CompatibleRuntimes: []string{"python3.12"}, CompatibleArchitectures: []string{"x86_64"}}, p1)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "lib" || l.Version.Version != 1 || l.Version.LayerVersionArn != arn+":1" || l.Version.Content.Location != "" || !p1.kept || p1.dropped {
		t.Fatalf("published %+v (package %+v)", l, p1)
	}
	if _, err := svc.Publish(ctx, arn, control.LayerInput{Description: "second"}, pkg(good)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Publish(ctx, "other", control.LayerInput{}, pkg(good)); err != nil {
		t.Fatal(err)
	}
	if b, err := svc.Content(ctx, "lib", "1"); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("content: %d bytes, %v", len(b), err)
	}

	// Reading one version, by name, by layer ARN and by version ARN.
	for _, tt := range []struct {
		name, layer, version string
		want                 int
		code                 string
	}{
		{"by name", "lib", "1", 1, ""},
		{"by layer ARN", arn, "2", 2, ""},
		{"missing", "lib", "9", 0, "ResourceNotFoundException"},
		{"missing layer", "nope", "1", 0, "ResourceNotFoundException"},
		{"not a number", "lib", "x", 0, "ValidationException"},
		{"zero", "lib", "0", 0, "InvalidParameterValueException"}, // AWS: "Layer Version Cannot be less than 1",
		{"another region", "arn:aws:lambda:eu-west-1:123456789012:layer:lib", "1", 0, "ResourceNotFoundException"},
	} {
		t.Run("get "+tt.name, func(t *testing.T) {
			l, err := svc.Get(ctx, tt.layer, tt.version)
			wantErr(t, err, tt.code, "")
			if err == nil && (l.Name != "lib" || l.Version.Version != tt.want) {
				t.Fatalf("got %+v", l)
			}
			_, err = svc.Content(ctx, tt.layer, tt.version)
			wantErr(t, err, tt.code, "")
		})
	}
	for _, tt := range []struct{ arn, code string }{
		{arn + ":2", ""},
		{arn, "ValidationException"},
		{arn + ":9", "ResourceNotFoundException"},
		{"arn:aws:lambda:eu-west-1:123456789012:layer:lib:1", "ResourceNotFoundException"},
		{"arn:aws:lambda:us-east-1:210987654321:layer:lib:1", "AccessDeniedException"},
	} {
		l, err := svc.GetByARN(ctx, tt.arn)
		wantErr(t, err, tt.code, "")
		if err == nil && l.Version.Description != "second" {
			t.Fatalf("by ARN %s: %+v", tt.arn, l)
		}
	}

	// Listing versions: newest first, filtered, in pages.
	versions := func(layer string, f control.LayerFilter, p control.Page) string {
		t.Helper()
		out, err := svc.Versions(ctx, layer, f, pageOf(p))
		if err != nil {
			t.Fatal(err)
		}
		var s []int
		for _, v := range out.LayerVersions {
			if v.Content != (control.Layer{}).Version.Content {
				t.Fatalf("a listed version has Content %+v", v.Content)
			}
			s = append(s, v.Version)
		}
		return fmt.Sprintf("%v %s", s, out.NextMarker)
	}
	for _, tt := range []struct {
		name string
		f    control.LayerFilter
		p    control.Page
		want string
	}{
		{"all", control.LayerFilter{}, control.Page{MaxItems: 50}, "[2 1] "},
		{"first page", control.LayerFilter{}, control.Page{MaxItems: 1}, "[2] 2"},
		{"second page", control.LayerFilter{}, control.Page{MaxItems: 1, Marker: "2"}, "[1] "},
		{"runtime", control.LayerFilter{Runtime: "python3.12"}, control.Page{MaxItems: 50}, "[1] "},
		{"architecture", control.LayerFilter{Architecture: "arm64"}, control.Page{MaxItems: 50}, "[] "},
	} {
		if got := versions("lib", tt.f, tt.p); got != tt.want {
			t.Errorf("versions %s: %s, want %s", tt.name, got, tt.want)
		}
	}
	_, err = svc.Versions(ctx, "a!b", control.LayerFilter{}, badPage)
	wantErr(t, err, "ValidationException", "at 'layerName'")
	_, err = svc.Versions(ctx, "lib", control.LayerFilter{}, badPage)
	wantErr(t, err, "ValidationException", "maxItems")

	// Listing layers: each with its latest matching version, by name, in pages.
	layers := func(f control.LayerFilter, p control.Page) string {
		t.Helper()
		out, err := svc.List(ctx, f, p)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, l := range out.Layers {
			s = append(s, fmt.Sprintf("%s:%d", l.LayerName, l.LatestMatchingVersion.Version))
		}
		return fmt.Sprintf("%v %s", s, out.NextMarker)
	}
	for _, tt := range []struct {
		name string
		f    control.LayerFilter
		p    control.Page
		want string
	}{
		{"all", control.LayerFilter{}, control.Page{MaxItems: 50}, "[lib:2 other:1] "},
		{"first page", control.LayerFilter{}, control.Page{MaxItems: 1}, "[lib:2] lib"},
		{"second page", control.LayerFilter{}, control.Page{MaxItems: 1, Marker: "lib"}, "[other:1] "},
		{"runtime", control.LayerFilter{Runtime: "python3.12", Architecture: "x86_64"}, control.Page{MaxItems: 50}, "[lib:1] "},
	} {
		if got := layers(tt.f, tt.p); got != tt.want {
			t.Errorf("layers %s: %s, want %s", tt.name, got, tt.want)
		}
	}

	// Deleting: a version that is not there (or not in this region) is no error; bad names
	// and numbers are.
	for _, tt := range []struct {
		layer, version string
		found          bool
		code           string
	}{
		{"lib", "2", true, ""},
		{"lib", "2", false, ""},
		{"arn:aws:lambda:eu-west-1:123456789012:layer:lib", "1", false, ""},
		{"arn:aws:lambda:us-east-1:210987654321:layer:lib", "1", false, "AccessDeniedException"},
		{"lib", "x", false, "ValidationException"},
		{"a!b", "1", false, "ValidationException"},
	} {
		found, err := svc.Delete(ctx, tt.layer, tt.version)
		wantErr(t, err, tt.code, "")
		if found != tt.found {
			t.Errorf("delete %s %s: found %v, want %v", tt.layer, tt.version, found, tt.found)
		}
	}
	if _, err := e.st.Layers().Get(ctx, "lib", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted version still stored: %v", err)
	}
	if got := versions("lib", control.LayerFilter{}, control.Page{MaxItems: 50}); got != "[1] " {
		t.Fatalf("versions after delete: %s", got)
	}
	// Version numbers are never reused.
	if l, err := svc.Publish(ctx, "lib", control.LayerInput{}, pkg(good)); err != nil || l.Version.Version != 3 {
		t.Fatalf("publish after delete: %+v, %v", l, err)
	}
}
