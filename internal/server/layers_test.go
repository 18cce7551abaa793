package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestLayers(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	publish := func(name string, files map[string]zipEntry) *lambda.PublishLayerVersionOutput {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
			Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, files)}, CompatibleRuntimes: []types.Runtime{types.RuntimePython312}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	v1 := publish("pylib", map[string]zipEntry{"python/greet.py": {body: "def hi():\n    return 'layer v1'\n"}})
	v2 := publish("pylib", map[string]zipEntry{"python/greet.py": {body: "def hi():\n    return 'layer v2'\n"}})
	if v1.Version != 1 || v2.Version != 2 || !strings.HasSuffix(aws.ToString(v2.LayerVersionArn), ":layer:pylib:2") || v2.Content == nil || aws.ToString(v2.Content.CodeSha256) == "" {
		t.Fatalf("published %+v / %+v", v1, v2)
	}
	a := publish("first", map[string]zipEntry{"python/which.py": {body: "NAME = 'first'\n"}, "python/only_a.py": {body: "X = 1\n"}})
	b := publish("second", map[string]zipEntry{"python/which.py": {body: "NAME = 'second'\n"}})

	fn := mustZip(t, map[string]zipEntry{"app.py": {body: "import greet, which, only_a\ndef handler(e, c):\n    return [greet.hi(), which.NAME, only_a.X]\n"}})
	createFunction(t, c, "uses", "python3.12", "app.handler", fn, func(in *lambda.CreateFunctionInput) {
		in.Layers = []string{aws.ToString(v1.LayerVersionArn), aws.ToString(a.LayerVersionArn), aws.ToString(b.LayerVersionArn)}
	})
	if out := invoke(t, c, "uses", `{}`); string(out.Payload) != `["layer v1", "second", 1]` {
		t.Errorf("with layers v1, first, second = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("uses")})
	if err != nil || len(cfg.Layers) != 3 || aws.ToString(cfg.Layers[0].Arn) != aws.ToString(v1.LayerVersionArn) || cfg.Layers[0].CodeSize == 0 {
		t.Errorf("configuration layers = %+v, %v", cfg.Layers, err)
	}
	// A deleted layer version keeps working for the functions that use it.
	if _, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("pylib"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("pylib"), VersionNumber: aws.Int64(1)}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetLayerVersion of a deleted version: %v", err)
	}
	setMark(t, c, "uses", "cold") // a new environment after the deletion
	if out := invoke(t, c, "uses", `{}`); string(out.Payload) != `["layer v1", "second", 1]` {
		t.Errorf("after deleting layer v1 = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
	// Updating the layers changes what runs.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("uses"),
		Layers: []string{aws.ToString(b.LayerVersionArn), aws.ToString(a.LayerVersionArn), aws.ToString(v2.LayerVersionArn)}}); err != nil {
		t.Fatal(err)
	}
	if out := invoke(t, c, "uses", `{}`); string(out.Payload) != `["layer v2", "first", 1]` {
		t.Errorf("with layers second, first, v2 = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}

	// A Node function whose node_modules is a layer.
	nodeLayer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("nodelib"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"nodejs/node_modules/greet/index.js": {body: "module.exports = () => 'node layer';\n"}})}})
	if err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "nodeuses", "nodejs20.x", "index.handler", mustZip(t, map[string]zipEntry{"index.js": {body: "const greet = require('greet');\nexports.handler = async () => greet();\n"}}),
		func(in *lambda.CreateFunctionInput) { in.Layers = []string{aws.ToString(nodeLayer.LayerVersionArn)} })
	if out := invoke(t, c, "nodeuses", `{}`); string(out.Payload) != `"node layer"` {
		t.Errorf("node_modules from a layer = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}

	// A custom runtime from a layer: /opt/bootstrap.
	var runtimeZip bytes.Buffer
	zr, _ := zip.NewReader(bytes.NewReader(goEchoZip), int64(len(goEchoZip)))
	zw := zip.NewWriter(&runtimeZip)
	for _, f := range zr.File {
		w, _ := zw.CreateHeader(&f.FileHeader)
		r, _ := f.Open()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
		r.Close()
	}
	zw.Close()
	rt, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("goruntime"), Content: &types.LayerVersionContentInput{ZipFile: runtimeZip.Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "optboot", "provided.al2023", "bootstrap", mustZip(t, map[string]zipEntry{"README": {body: "the runtime is in a layer"}}),
		func(in *lambda.CreateFunctionInput) { in.Layers = []string{aws.ToString(rt.LayerVersionArn)} })
	if out := invoke(t, c, "optboot", `{"from":"opt"}`); string(out.Payload) != `{"from":"opt"}` {
		t.Errorf("/opt/bootstrap = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}

	// Listings and rejections.
	layers, err := c.ListLayers(ctx, &lambda.ListLayersInput{})
	if err != nil || len(layers.Layers) != 5 {
		t.Errorf("ListLayers = %+v, %v", layers, err)
	}
	versions, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("pylib")})
	if err != nil || len(versions.LayerVersions) != 1 || versions.LayerVersions[0].Version != 2 {
		t.Errorf("ListLayerVersions = %+v, %v", versions, err)
	}
	byArn, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: v2.LayerVersionArn})
	if err != nil || byArn.Version != 2 {
		t.Errorf("GetLayerVersionByArn = %+v, %v", byArn, err)
	}
	six := []string{}
	for range 6 {
		six = append(six, aws.ToString(v2.LayerVersionArn))
	}
	for name, layers := range map[string][]string{
		"missing version": {"arn:aws:lambda:us-east-1:000000000000:layer:pylib:9"},
		"six layers":      six,
	} {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("uses"), Layers: layers})
		if apiErrorCode(err) != "InvalidParameterValueException" {
			t.Errorf("%s: %v, want InvalidParameterValueException", name, err)
		}
	}
}

// TestLayersCountTowardUnzippedLimit: code and layers together over 250 MB fail before anything
// is stored.
func TestLayersCountTowardUnzippedLimit(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zeros := func(mb int) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("blob")
		chunk := make([]byte, 1<<20)
		for range mb {
			_, _ = w.Write(chunk)
		}
		zw.Close()
		return buf.Bytes()
	}
	big, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("big"), Content: &types.LayerVersionContentInput{ZipFile: zeros(150)}})
	if err != nil {
		t.Fatal(err)
	}
	code := zeros(110)
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("toobig"), Runtime: types.RuntimePython312,
		Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: code},
		Layers: []string{aws.ToString(big.LayerVersionArn)}})
	if apiErrorCode(err) != "InvalidParameterValueException" {
		t.Fatalf("code 110 MB + layer 150 MB: %v, want InvalidParameterValueException", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("toobig")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("the rejected function exists: %v", err)
	}
	// The same through UpdateFunctionConfiguration leaves the function as it was.
	createFunction(t, c, "small", "python3.12", "app.handler", zeros(110))
	before := snapshot(t, c)
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("small"),
		Layers: []string{aws.ToString(big.LayerVersionArn)}}); apiErrorCode(err) != "InvalidParameterValueException" {
		t.Errorf("adding a 150 MB layer to 110 MB of code: %v", err)
	}
	if after := snapshot(t, c); after["small"] != before["small"] {
		t.Errorf("configuration changed by a rejected update")
	}
}
