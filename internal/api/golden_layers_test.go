package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// Download links carry the server's address, an expiry and a signature (masked as the
// functions' tests mask them).

// publishLayer is a PublishLayerVersion body with the given fields beside a fixed Content.
func publishLayer(fields map[string]any) string {
	in := map[string]any{"Content": map[string]any{"ZipFile": fixedZip("python/lib.py", "X = 1\n")}}
	for k, v := range fields {
		in[k] = v
	}
	b, _ := json.Marshal(in)
	return string(b)
}

// TestGoldenLayers: PublishLayerVersion, GetLayerVersion (by name and by ARN), ListLayerVersions,
// ListLayers, DeleteLayerVersion, the layer content download and their rejections.
func TestGoldenLayers(t *testing.T) {
	const (
		base    = "/2018-10-31/layers/"
		arn     = "arn:aws:lambda:us-east-1:000000000000:layer:golden-layers-a"
		foreign = "arn:aws:lambda:eu-west-1:123456789012:layer:golden-layers-a"
		other   = "arn:aws:lambda:us-east-1:210987654321:layer:golden-layers-a"
	)
	many := make([]string, 16)
	for i := range many {
		many[i] = "python3.12"
	}
	runGolden(t, []step{
		{"publish", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"Description": "first",
			"CompatibleRuntimes": []string{"python3.12"}, "CompatibleArchitectures": []string{"x86_64"}, "LicenseInfo": "MIT"})},
		{"publish-second", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"Description": "second"})},
		{"publish-other", "POST", base + "golden-layers-b/versions", publishLayer(nil)},
		{"publish-by-arn", "POST", base + arn + "/versions", publishLayer(map[string]any{"Description": "third"})},
		{"publish-no-content", "POST", base + "golden-layers-a/versions", `{"Description":"x"}`},
		{"publish-bad-name", "POST", base + "bad%21name/versions", publishLayer(nil)},
		{"publish-bad-runtime", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"CompatibleRuntimes": []string{"cobol"}})},
		{"publish-bad-arch", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"CompatibleArchitectures": []string{"mips"}})},
		{"publish-too-many-runtimes", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"CompatibleRuntimes": many})},
		{"publish-long-license", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"LicenseInfo": strings.Repeat("x", 513)})},
		{"publish-long-description", "POST", base + "golden-layers-a/versions", publishLayer(map[string]any{"Description": strings.Repeat("x", 257)})},
		{"publish-bad-zip", "POST", base + "golden-layers-a/versions", `{"Content":{"ZipFile":"aGVsbG8="}}`},
		{"publish-image", "POST", base + "golden-layers-a/versions", `{"Content":{"ImageUri":"x"}}`},
		{"publish-s3", "POST", base + "golden-layers-a/versions", `{"Content":{"S3Bucket":"b","S3Key":"k"}}`},
		{"publish-empty-content", "POST", base + "golden-layers-a/versions", `{"Content":{}}`},
		{"publish-bad-json", "POST", base + "golden-layers-a/versions", `{"Content":`},
		{"publish-wrong-type", "POST", base + "golden-layers-a/versions", `{"Description":5}`},
		{"publish-foreign-region", "POST", base + foreign + "/versions", publishLayer(nil)},
		{"publish-foreign-account", "POST", base + other + "/versions", publishLayer(nil)},
		{"get", "GET", base + "golden-layers-a/versions/1", ""},
		{"get-by-arn-path", "GET", base + arn + "/versions/2", ""},
		{"get-missing", "GET", base + "golden-layers-a/versions/9", ""},
		{"get-missing-layer", "GET", base + "golden-layers-nope/versions/1", ""},
		{"get-bad-version", "GET", base + "golden-layers-a/versions/x", ""},
		{"get-zero-version", "GET", base + "golden-layers-a/versions/0", ""},
		{"get-foreign-region", "GET", base + foreign + "/versions/1", ""},
		{"get-foreign-account", "GET", base + other + "/versions/1", ""},
		{"get-by-arn", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + arn + ":1", ""},
		{"get-by-arn-no-version", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + arn, ""},
		{"get-by-arn-missing", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + arn + ":9", ""},
		{"get-by-arn-foreign-region", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + foreign + ":1", ""},
		{"get-by-arn-foreign-account", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + other + ":1", ""},
		{"list-versions", "GET", base + "golden-layers-a/versions", ""},
		{"list-versions-page", "GET", base + "golden-layers-a/versions?MaxItems=2", ""},
		{"list-versions-next", "GET", base + "golden-layers-a/versions?MaxItems=2&Marker=2", ""},
		{"list-versions-runtime", "GET", base + "golden-layers-a/versions?CompatibleRuntime=python3.12", ""},
		{"list-versions-arch", "GET", base + "golden-layers-a/versions?CompatibleArchitecture=arm64", ""},
		{"list-versions-bad-max", "GET", base + "golden-layers-a/versions?MaxItems=0", ""},
		{"list-versions-missing", "GET", base + "golden-layers-nope/versions", ""},
		{"list-versions-bad-name", "GET", base + "bad%21name/versions", ""},
		{"list-versions-bad-name-bad-max", "GET", base + "bad%21name/versions?MaxItems=0", ""},
		{"list-layers-find-bad-max", "GET", "/2018-10-31/layers?find=LayerVersion&Arn=" + arn + ":1&MaxItems=0", ""},
		{"list-layers", "GET", "/2018-10-31/layers?Marker=golden-layers-&MaxItems=1", ""},
		{"list-layers-next", "GET", "/2018-10-31/layers/?Marker=golden-layers-a&MaxItems=1", ""},
		{"list-layers-runtime", "GET", "/2018-10-31/layers?Marker=golden-layers-&MaxItems=1&CompatibleRuntime=python3.12", ""},
		{"list-layers-bad-max", "GET", "/2018-10-31/layers?MaxItems=10001", ""},
		{"content", "GET", "/flint/v1/layers/golden-layers-a/versions/1/content", ""},
		{"content-missing", "GET", "/flint/v1/layers/golden-layers-a/versions/9/content", ""},
		{"content-bad-version", "GET", "/flint/v1/layers/golden-layers-a/versions/x/content", ""},
		{"delete", "DELETE", base + "golden-layers-a/versions/2", ""},
		{"delete-again", "DELETE", base + "golden-layers-a/versions/2", ""},
		{"delete-bad-version", "DELETE", base + "golden-layers-a/versions/x", ""},
		{"delete-foreign-region", "DELETE", base + foreign + "/versions/1", ""},
		{"delete-foreign-account", "DELETE", base + other + "/versions/1", ""},
		{"delete-bad-name", "DELETE", base + "bad%21name/versions/1", ""},
		{"get-deleted", "GET", base + "golden-layers-a/versions/2", ""},
		{"list-versions-after", "GET", base + "golden-layers-a/versions", ""},
	})
}
