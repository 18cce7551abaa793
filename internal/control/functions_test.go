package control_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

// pkg is a zip holding app.py with src, the same bytes for the same src.
func pkg(t *testing.T, src string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "app.py", Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// createInput is a valid CreateFunction request for name.
func createInput(t *testing.T, name string) control.FunctionInput {
	return control.FunctionInput{FunctionName: name, Runtime: "python3.12", Handler: "app.handler",
		Role: ptr("arn:aws:iam::123456789012:role/r"), Code: &control.CodeInput{ZipFile: pkg(t, "def handler(e, c):\n    return 1\n")}}
}

// codeKeys are the keys of the packages in the object store.
func (e *env) codeKeys(t *testing.T) []string {
	t.Helper()
	objs, err := e.st.Code().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// cached are the names of the unpacked and merged directories in the node's cache.
func (e *env) cached(t *testing.T) []string {
	t.Helper()
	ents, err := e.cache.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range ents {
		names = append(names, en.Name)
	}
	slices.Sort(names)
	return names
}

// functionNames are the names of the stored functions.
func (e *env) functionNames(t *testing.T) []string {
	t.Helper()
	all, err := e.st.Functions().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range all {
		names = append(names, f.Config.FunctionName)
	}
	return names
}

// layer publishes layer version name:1 holding one file, as PublishLayerVersion stores it.
func (e *env) layer(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	code := e.plane.Code
	in := &control.CodeInput{ZipFile: pkg(t, "X = 1\n")}
	info, err := code.Validate(in)
	if err != nil {
		t.Fatal(err)
	}
	staged, err := code.Stage(ctx, in.ZipFile, info)
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:123456789012:layer:" + name
	l := &lambda.StoredLayer{CodeKey: staged.Key(), UnzippedSize: info.UnzippedSize, Layer: lambda.LayerVersion{
		Content: lambda.LayerContent{CodeSha256: info.CodeSha256, CodeSize: info.Size}, LayerArn: arn,
		LayerVersionArn: arn + ":1", Version: 1}}
	if err := e.st.Layers().Put(ctx, name, l); err != nil {
		t.Fatal(err)
	}
	staged.Keep()
	return arn + ":1"
}

func TestFunctionsCreate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	c, err := svc.Create(ctx, createInput(t, "fn"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != lambda.LatestVersion || c.State != "Active" || c.FunctionArn != e.account.FunctionARN("fn", "") || c.CodeSha256 == "" {
		t.Fatalf("created %+v", c)
	}
	if en, err := e.view.Lookup(ctx, "fn", ""); err != nil || en.Fn.Config.RevisionId != c.RevisionId {
		t.Fatalf("view after create: %+v, %v", en, err)
	}
	keys := e.codeKeys(t)
	if len(keys) != 1 {
		t.Fatalf("code after create: %v", keys)
	}

	// Every rejection leaves the store as it was: one function, one package.
	layer := func(n string) string { return "arn:aws:lambda:us-east-1:123456789012:layer:" + n }
	for _, tt := range []struct {
		name      string
		change    func(in *control.FunctionInput)
		code, msg string
	}{
		{"qualified", func(in *control.FunctionInput) { in.FunctionName = "fn2:1" }, "InvalidParameterValueException", "a qualifier is not allowed"},
		{"bad name", func(in *control.FunctionInput) { in.FunctionName = "fn 2" }, "ValidationException", "at 'functionName'"},
		{"other account", func(in *control.FunctionInput) {
			in.FunctionName = "arn:aws:lambda:us-east-1:999999999999:function:fn2"
		}, "AccessDeniedException", ""},
		{"other region", func(in *control.FunctionInput) {
			in.FunctionName = "arn:aws:lambda:eu-west-1:123456789012:function:fn2"
		}, "ResourceNotFoundException", "not reachable in this region"},
		{"no role", func(in *control.FunctionInput) { in.Role = nil }, "ValidationException", "Value null at 'role'"},
		{"bad role", func(in *control.FunctionInput) { in.Role = ptr("admin") }, "ValidationException", "Value 'admin' at 'role'"},
		{"image", func(in *control.FunctionInput) { in.PackageType = "Image" }, "InvalidParameterValueException", "PackageType Image"},
		{"bad package type", func(in *control.FunctionInput) { in.PackageType = "Tar" }, "ValidationException", "at 'packageType'"},
		{"no code", func(in *control.FunctionInput) { in.Code = nil }, "ValidationException", "Value null at 'code'"},
		{"no runtime", func(in *control.FunctionInput) { in.Runtime = "" }, "InvalidParameterValueException", "Runtime parameter must be set"},
		{"bad runtime", func(in *control.FunctionInput) { in.Runtime = "cobol85" }, "InvalidParameterValueException", "at 'runtime'"},
		{"bad handler", func(in *control.FunctionInput) { in.Handler = strings.Repeat("h", 200) }, "ValidationException", "handler"},
		{"small memory", func(in *control.FunctionInput) { in.MemorySize = ptr(64) }, "ValidationException", "at 'memorySize'"},
		{"long timeout", func(in *control.FunctionInput) { in.Timeout = ptr(901) }, "ValidationException", "at 'timeout'"},
		{"bad ephemeral", func(in *control.FunctionInput) { in.EphemeralStorage = &lambda.EphemeralStorage{Size: 100} }, "ValidationException", "ephemeralStorage"},
		{"reserved variable", func(in *control.FunctionInput) {
			in.Environment = &lambda.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
		}, "InvalidParameterValueException", "reserved keys"},
		{"bad architecture", func(in *control.FunctionInput) { in.Architectures = []string{"mips"} }, "ValidationException", "at 'architectures'"},
		{"two architectures", func(in *control.FunctionInput) { in.Architectures = []string{"x86_64", "arm64"} }, "ValidationException", "at 'architectures'"},
		{"bad dead-letter target", func(in *control.FunctionInput) {
			in.DeadLetterConfig = &lambda.DeadLetterConfig{TargetArn: "arn:aws:sqs:us-east-1:123456789012:q"}
		}, "InvalidParameterValueException", "DeadLetterConfig TargetArn"},
		{"bad tracing", func(in *control.FunctionInput) { in.TracingConfig = &lambda.TracingConfig{Mode: "Loud"} }, "ValidationException", "tracingConfig.mode"},
		{"bad log format", func(in *control.FunctionInput) { in.LoggingConfig = &lambda.LoggingConfig{LogFormat: "XML"} }, "ValidationException", "loggingConfig.logFormat"},
		{"long tag key", func(in *control.FunctionInput) { in.Tags = map[string]string{strings.Repeat("k", 129): "v"} }, "InvalidParameterValueException", "Tag keys"},
		{"S3 code", func(in *control.FunctionInput) { in.Code = &control.CodeInput{S3Bucket: "b", S3Key: "k"} }, "InvalidParameterValueException", "S3Bucket/S3Key"},
		{"image code", func(in *control.FunctionInput) { in.Code = &control.CodeInput{ImageUri: "img"} }, "InvalidParameterValueException", "ImageUri"},
		{"no zip", func(in *control.FunctionInput) { in.Code = &control.CodeInput{} }, "InvalidParameterValueException", "provide a source"},
		{"bad zip", func(in *control.FunctionInput) { in.Code = &control.CodeInput{ZipFile: []byte("hello")} }, "InvalidParameterValueException", "Could not unzip"},
		{"six layers", func(in *control.FunctionInput) {
			in.Layers = []string{layer("l:1"), layer("l:2"), layer("l:3"), layer("l:4"), layer("l:5"), layer("l:6")}
		}, "InvalidParameterValueException", "more than 5 layers"},
		{"unversioned layer", func(in *control.FunctionInput) { in.Layers = []string{layer("l")} }, "ValidationException", "at 'layers'"},
		{"missing layer", func(in *control.FunctionInput) { in.Layers = []string{layer("none:1")} }, "InvalidParameterValueException", "does not exist"},
		{"other account's layer", func(in *control.FunctionInput) {
			in.Layers = []string{"arn:aws:lambda:us-east-1:999999999999:layer:l:1"}
		}, "AccessDeniedException", "lambda:GetLayerVersion"},
		{"taken", func(in *control.FunctionInput) { in.FunctionName = "fn" }, "ResourceConflictException", "Function already exist: fn"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := createInput(t, "fn2")
			in.Code.ZipFile = pkg(t, "def handler(e, c):\n    return 2\n") // a package not yet stored
			tt.change(&in)
			_, err := svc.Create(ctx, in)
			wantErr(t, err, tt.code, tt.msg)
			if got := e.functionNames(t); !slices.Equal(got, []string{"fn"}) {
				t.Fatalf("functions after the rejection: %v", got)
			}
			if got := e.codeKeys(t); !slices.Equal(got, keys) {
				t.Fatalf("code after the rejection: %v, want %v", got, keys)
			}
		})
	}

	// Publish creates version 1 with the function, and the view serves it at once; layers are
	// resolved to their sizes and code keys.
	arn := e.layer(t, "lib")
	in := createInput(t, "pub")
	in.Publish, in.Layers, in.Tags = true, []string{arn}, map[string]string{"team": "x"}
	in.Environment = &lambda.Environment{Variables: map[string]string{"AA": "1"}}
	v, err := svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// AWS answers version 1 under the unqualified ARN.
	if v.Version != "1" || v.FunctionArn != e.account.FunctionARN("pub", "") || len(v.Layers) != 1 || v.Layers[0].Arn != arn || v.Layers[0].CodeSize == 0 {
		t.Fatalf("published at create: %+v", v)
	}
	en, err := e.view.Lookup(ctx, "pub", "1")
	if err != nil || en.Fn.Config.RevisionId != v.RevisionId || len(en.Fn.LayerKeys) != 1 {
		t.Fatalf("view of version 1: %+v, %v", en, err)
	}
	f, err := svc.Get(ctx, control.Target{Op: "GetFunction", Name: "pub"})
	if err != nil || f.Tags["team"] != "x" || f.Config.Environment.Variables["AA"] != "1" {
		t.Fatalf("GetFunction: %+v, %v", f, err)
	}
}

func TestFunctionsGet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	if _, err := svc.Create(ctx, createInput(t, "fn")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.plane.Versions.Publish(ctx, control.Target{Op: "PublishVersion", Name: "fn"}, control.PublishInput{Description: ptr("v1")}); err != nil {
		t.Fatal(err)
	}
	e.alias(t, "fn", "live", "1")
	get := func(name, q string) control.Target {
		return control.Target{Op: "GetFunction", Name: name, Qualifier: q}
	}
	for _, tt := range []struct {
		name      string
		target    control.Target
		version   string
		code, msg string
	}{
		{"latest", get("fn", ""), "$LATEST", "", ""},
		{"$LATEST", get("fn", "$LATEST"), "$LATEST", "", ""},
		{"version", get("fn:1", ""), "1", "", ""},
		{"alias", get("fn", "live"), "1", "", ""},
		{"arn", get(e.account.FunctionARN("fn", "1"), ""), "1", "", ""},
		{"missing version", get("fn", "9"), "", "ResourceNotFoundException", "function:fn:9"},
		{"missing alias", get("fn", "dev"), "", "ResourceNotFoundException", "function:fn:dev"},
		{"missing function", get("nope", ""), "", "ResourceNotFoundException", "function:nope"},
		{"bad qualifier", get("fn", "a.b"), "", "ValidationException", "at 'qualifier'"},
		{"qualifiers disagree", get("fn:1", "2"), "", "InvalidParameterValueException", "does not match"},
		{"other account", get("arn:aws:lambda:us-east-1:999999999999:function:fn", ""), "", "AccessDeniedException", "lambda:GetFunction"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := svc.Get(ctx, tt.target)
			wantErr(t, err, tt.code, tt.msg)
			if err == nil && f.Config.Version != tt.version {
				t.Fatalf("version %s, want %s", f.Config.Version, tt.version)
			}
		})
	}

	// The code download serves $LATEST's package only.
	b, err := svc.Package(ctx, control.Target{Op: "GetFunction", Name: "fn"})
	if err != nil || !bytes.Equal(b, createInput(t, "fn").Code.ZipFile) {
		t.Fatalf("package: %d bytes, %v", len(b), err)
	}
	_, err = svc.Package(ctx, control.Target{Op: "GetFunction", Name: "fn:1"})
	wantErr(t, err, "ResourceNotFoundException", "function:fn:1")

	// Logs are the function's whatever the qualifier.
	if name, err := svc.Logs(ctx, control.Target{Op: "GetFunction", Name: "fn:live"}); err != nil || name != "fn" {
		t.Fatalf("logs of fn:live: %q, %v", name, err)
	}
	_, err = svc.Logs(ctx, control.Target{Op: "GetFunction", Name: "nope"})
	wantErr(t, err, "ResourceNotFoundException", "function:nope")
}

func TestFunctionsList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	for _, n := range []string{"c", "a", "b"} {
		if _, err := svc.Create(ctx, createInput(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, version string
		page          control.Page
		want          []string
		next          string
		code          string
	}{
		{"first page", "", control.Page{MaxItems: 2}, []string{"a", "b"}, "b", ""},
		{"next page", "", control.Page{MaxItems: 2, Marker: "b"}, []string{"c"}, "", ""},
		{"ALL", "ALL", control.Page{MaxItems: 50}, []string{"a", "b", "c"}, "", ""},
		{"past the end", "", control.Page{MaxItems: 50, Marker: "c"}, nil, "", ""},
		{"a version", "1", control.Page{MaxItems: 50}, nil, "", "ValidationException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := svc.List(ctx, tt.version, tt.page)
			wantErr(t, err, tt.code, "")
			if err != nil {
				return
			}
			var got []string
			for _, c := range out.Functions {
				got = append(got, c.FunctionName)
				if c.State != "" || c.LastUpdateStatus != "" {
					t.Errorf("%s lists state fields: %+v", c.FunctionName, c)
				}
			}
			if !slices.Equal(got, tt.want) || out.NextMarker != tt.next {
				t.Fatalf("got %v next %q, want %v next %q", got, out.NextMarker, tt.want, tt.next)
			}
		})
	}
}

func TestFunctionsUpdateConfiguration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	in := createInput(t, "fn")
	in.Environment = &lambda.Environment{Variables: map[string]string{"AA": "1"}}
	created, err := svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	fn := control.Target{Op: "UpdateFunctionConfiguration", Name: "fn"}
	// The view has $LATEST before the update, so only an awaited write can show in it at once.
	if _, err := e.view.Lookup(ctx, "fn", ""); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.ConfigUpdate
		code, msg string
	}{
		{"stale revision", fn, control.ConfigUpdate{Timeout: ptr(10), RevisionId: "stale"}, "PreconditionFailedException", "Revision Id"},
		{"bad role", fn, control.ConfigUpdate{Role: ptr("admin")}, "ValidationException", "at 'role'"},
		{"big memory", fn, control.ConfigUpdate{MemorySize: ptr(20000)}, "ValidationException", "at 'memorySize'"},
		{"bad runtime", fn, control.ConfigUpdate{Runtime: ptr("cobol85")}, "InvalidParameterValueException", "at 'runtime'"},
		{"missing layer", fn, control.ConfigUpdate{Layers: []string{"arn:aws:lambda:us-east-1:123456789012:layer:none:1"}}, "InvalidParameterValueException", "does not exist"},
		{"bad dead-letter target", fn, control.ConfigUpdate{DeadLetterConfig: &lambda.DeadLetterConfig{TargetArn: "nope"}}, "InvalidParameterValueException", "DeadLetterConfig"},
		{"qualified", control.Target{Op: "UpdateFunctionConfiguration", Name: "fn", Qualifier: "1"}, control.ConfigUpdate{Timeout: ptr(10)}, "ResourceNotFoundException", "function:fn:1"},
		{"missing function", control.Target{Op: "UpdateFunctionConfiguration", Name: "nope"}, control.ConfigUpdate{Timeout: ptr(10)}, "ResourceNotFoundException", "function:nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.UpdateConfiguration(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
			f, err := e.st.Functions().Get(ctx, "fn")
			if err != nil || f.Config.RevisionId != created.RevisionId {
				t.Fatalf("the function changed: %+v, %v", f, err)
			}
		})
	}

	// With the current RevisionId the change applies and the invocation view has it on return.
	c, err := svc.UpdateConfiguration(ctx, fn, control.ConfigUpdate{Timeout: ptr(10), Handler: ptr("app.h2"),
		Environment: &lambda.Environment{Variables: map[string]string{"BB": "2"}}, RevisionId: created.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 10 || c.Handler != "app.h2" || c.Environment.Variables["BB"] != "2" || c.Environment.Variables["AA"] != "" || c.RevisionId == created.RevisionId {
		t.Fatalf("updated %+v", c)
	}
	if en, err := e.view.Lookup(ctx, "fn", ""); err != nil || en.Fn.Config.Timeout != 10 {
		t.Fatalf("view after the update: %+v, %v", en, err)
	}
	// An empty Environment removes the variables.
	c, err = svc.UpdateConfiguration(ctx, fn, control.ConfigUpdate{Environment: &lambda.Environment{}})
	if err != nil || c.Environment != nil {
		t.Fatalf("after clearing the environment: %+v, %v", c, err)
	}
}

func TestFunctionsUpdateCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	created, err := svc.Create(ctx, createInput(t, "fn"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.view.Lookup(ctx, "fn", ""); err != nil {
		t.Fatal(err)
	}
	fn := control.Target{Op: "UpdateFunctionCode", Name: "fn"}
	v2 := pkg(t, "def handler(e, c):\n    return 2\n")
	keys, dirs := e.codeKeys(t), e.cached(t)

	// A dry run answers the configuration the update would give and stores nothing.
	dry, err := svc.UpdateCode(ctx, fn, control.CodeUpdate{ZipFile: v2, DryRun: true})
	if err != nil || dry.CodeSha256 == created.CodeSha256 || dry.RevisionId != created.RevisionId {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.CodeUpdate
		code, msg string
	}{
		{"dry run without code", fn, control.CodeUpdate{DryRun: true}, "InvalidParameterValueException", "provide a source"},
		{"dry run, bad zip", fn, control.CodeUpdate{ZipFile: []byte("hello"), DryRun: true}, "InvalidParameterValueException", "Could not unzip"},
		{"no code", fn, control.CodeUpdate{}, "InvalidParameterValueException", "provide a source"},
		{"bad zip", fn, control.CodeUpdate{ZipFile: []byte("hello")}, "InvalidParameterValueException", "Could not unzip"},
		{"S3", fn, control.CodeUpdate{S3Bucket: "b", S3Key: "k"}, "InvalidParameterValueException", "S3Bucket/S3Key"},
		{"image", fn, control.CodeUpdate{ImageUri: "img"}, "InvalidParameterValueException", "ImageUri"},
		{"stale revision", fn, control.CodeUpdate{ZipFile: v2, RevisionId: "stale"}, "PreconditionFailedException", "Revision Id"},
		{"bad architecture", fn, control.CodeUpdate{ZipFile: v2, Architectures: []string{"mips"}}, "ValidationException", "at 'architectures'"},
		{"qualified", control.Target{Op: "UpdateFunctionCode", Name: "fn:1"}, control.CodeUpdate{ZipFile: v2}, "ResourceNotFoundException", "function:fn:1"},
		{"missing function", control.Target{Op: "UpdateFunctionCode", Name: "nope"}, control.CodeUpdate{ZipFile: v2}, "ResourceNotFoundException", "function:nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.UpdateCode(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
			f, err := e.st.Functions().Get(ctx, "fn")
			if err != nil || f.Config.RevisionId != created.RevisionId {
				t.Fatalf("the function changed: %+v, %v", f, err)
			}
			if got := e.codeKeys(t); !slices.Equal(got, keys) {
				t.Fatalf("stored code %v, want %v", got, keys)
			}
			if got := e.cached(t); !slices.Equal(got, dirs) {
				t.Fatalf("unpacked code %v, want %v", got, dirs)
			}
		})
	}

	c, err := svc.UpdateCode(ctx, fn, control.CodeUpdate{ZipFile: v2, Architectures: []string{"arm64"}, RevisionId: created.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if c.CodeSha256 != dry.CodeSha256 || c.Architectures[0] != "arm64" || c.Version != lambda.LatestVersion {
		t.Fatalf("updated %+v", c)
	}
	if en, err := e.view.Lookup(ctx, "fn", ""); err != nil || en.Fn.Config.CodeSha256 != c.CodeSha256 {
		t.Fatalf("view after the update: %+v, %v", en, err)
	}

	// Publish answers the new version; the same code again publishes nothing new.
	for range 2 {
		v, err := svc.UpdateCode(ctx, fn, control.CodeUpdate{ZipFile: pkg(t, "def handler(e, c):\n    return 3\n"), Publish: true})
		if err != nil || v.Version != "1" {
			t.Fatalf("update and publish: %+v, %v", v, err)
		}
	}
	if vs, err := e.st.Versions().List(ctx, "fn"); err != nil || len(vs) != 1 {
		t.Fatalf("versions: %d, %v", len(vs), err)
	}
}

func TestFunctionsDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Functions
	if _, err := svc.Create(ctx, createInput(t, "fn")); err != nil {
		t.Fatal(err)
	}
	pub := control.Target{Op: "PublishVersion", Name: "fn"}
	for i := 1; i <= 3; i++ {
		if _, err := svc.UpdateConfiguration(ctx, control.Target{Op: "UpdateFunctionConfiguration", Name: "fn"}, control.ConfigUpdate{Timeout: ptr(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.plane.Versions.Publish(ctx, pub, control.PublishInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.plane.Aliases.Create(ctx, control.Target{Op: "CreateAlias", Name: "fn"}, control.AliasInput{Name: "live", FunctionVersion: ptr("1"),
		RoutingConfig: &lambda.AliasRoutingConfig{AdditionalVersionWeights: map[string]float64{"2": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	del := func(name, q string) control.Target {
		return control.Target{Op: "DeleteFunction", Name: name, Qualifier: q}
	}
	for _, tt := range []struct {
		name      string
		target    control.Target
		code, msg string
	}{
		{"$LATEST", del("fn", "$LATEST"), "InvalidParameterValueException", "$LATEST version cannot be deleted"},
		{"an alias", del("fn", "live"), "InvalidParameterValueException", "Deletion of aliases is not currently supported."},
		{"aliased version", del("fn", "1"), "ResourceConflictException", "function:fn:live"},
		{"weighted version", del("fn:2", ""), "ResourceConflictException", "function:fn:live"},
		// AWS: deleting a version that does not exist succeeds (DeleteFunction is idempotent).
		{"missing version", del("fn", "9"), "", ""},
		{"version of a missing function", del("nope", "1"), "ResourceNotFoundException", "function:nope"},
		{"bad qualifier", del("fn", "a.b"), "ValidationException", "at 'qualifier'"},
		{"other account", del("arn:aws:lambda:us-east-1:999999999999:function:fn", ""), "AccessDeniedException", "lambda:DeleteFunction"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, svc.Delete(ctx, tt.target), tt.code, tt.msg)
			if vs, err := e.st.Versions().List(ctx, "fn"); err != nil || len(vs) != 3 {
				t.Fatalf("versions after the rejection: %d, %v", len(vs), err)
			}
		})
	}

	// Deleting a version or the function takes it out of the view before Delete returns.
	for _, q := range []string{"3", ""} {
		if _, err := e.view.Lookup(ctx, "fn", q); err != nil {
			t.Fatal(err)
		}
		if err := svc.Delete(ctx, del("fn", q)); err != nil {
			t.Fatal(err)
		}
		if en, err := e.view.Lookup(ctx, "fn", q); err == nil {
			t.Fatalf("the view still has fn:%s: %+v", q, en.Fn.Config)
		}
	}
	wantErr(t, svc.Delete(ctx, del("fn", "")), "ResourceNotFoundException", "function:fn")
}

// TestListFunctionsReadsItsPageOnly: a ListFunctions page reads the records it returns (and
// the one that tells more follow), not every function's: paging through N functions must cost
// N reads, not N per page (which made a page of 50 among 1,000 functions take 55 ms, ten times
// one among 100). The reads are counted as the requests the store's NATS connection sends.
// Nor does a page list every name again while nothing changed: after the first, a page
// receives less than the names alone weigh.
func TestListFunctionsReadsItsPageOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n, size = 150, 3
	var names []string
	for i := range n {
		name := fmt.Sprintf("fn-%03d-%s", i, strings.Repeat("x", 57)) // 64, the longest name
		names = append(names, name)
		if _, err := e.plane.Functions.Create(ctx, createInput(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	nc := e.st.JetStream().Conn()
	var got []string
	marker, pages := "", 0
	before := nc.Stats().OutMsgs
	var heaviest uint64 // bytes received by a page after the first
	for {
		in := nc.Stats().InBytes
		out, err := e.plane.Functions.List(ctx, "", control.Page{MaxItems: size, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		if pages++; pages > 1 {
			heaviest = max(heaviest, nc.Stats().InBytes-in)
		}
		for _, c := range out.Functions {
			got = append(got, c.FunctionName)
		}
		if out.NextMarker == "" {
			break
		}
		if want := out.Functions[len(out.Functions)-1].FunctionName; out.NextMarker != want {
			t.Fatalf("NextMarker %q, want the page's last name %q", out.NextMarker, want)
		}
		marker = out.NextMarker
	}
	sent := nc.Stats().OutMsgs - before
	t.Logf("%d requests to the store for %d pages of %d among %d functions; %d bytes received by the heaviest page after the first", sent, pages, size, n, heaviest)
	if !slices.Equal(got, names) {
		t.Fatalf("paged through %v, want %v", got, names)
	}
	if pages != (n+size-1)/size {
		t.Errorf("%d pages, want %d", pages, (n+size-1)/size)
	}
	// Per page: the key listing's few requests and size+1 reads. Reading every record per
	// page would send n per page, n*n/size in all.
	if perPage := float64(sent) / float64(pages); perPage > 2*size+4 {
		t.Errorf("%d requests for %d pages of %d among %d functions: %.1f a page, want at most %d", sent, pages, size, n, perPage, 2*size+4)
	}
	if names := uint64(n * len(names[0])); heaviest >= names {
		t.Errorf("a page after the first received %d bytes, want less than the %d bytes of the names alone", heaviest, names)
	}

	// Deleted functions are not listed, wherever they fall: first, inside a page, last.
	gone := []string{names[0], names[5], names[6], names[n-1]}
	for _, name := range gone {
		if err := e.plane.Functions.Delete(ctx, control.Target{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	names = slices.DeleteFunc(names, func(s string) bool { return slices.Contains(gone, s) })
	got, marker, pages = nil, "", 0
	for {
		out, err := e.plane.Functions.List(ctx, "", control.Page{MaxItems: size, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range out.Functions {
			got = append(got, c.FunctionName)
		}
		if marker = out.NextMarker; marker == "" {
			break
		}
	}
	if want := (len(names) + size - 1) / size; !slices.Equal(got, names) || pages != want {
		t.Fatalf("after deletes: %d pages of %v, want %d of %v", pages, got, want, names)
	}
}
