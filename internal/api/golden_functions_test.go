package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The functions' handler tests: CreateFunction, GetFunction, GetFunctionConfiguration,
// ListFunctions, DeleteFunction (and of a version), UpdateFunctionCode,
// UpdateFunctionConfiguration, PublishVersion, ListVersionsByFunction, the reserved concurrency
// operations, GetAccountSettings and Flint's own code and logs endpoints.

// createBody is a CreateFunction body for name with fields merged over a valid request.
func createBody(name string, fields map[string]any) string {
	in := map[string]any{"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler",
		"Role": "arn:aws:iam::123456789012:role/golden", "Code": map[string]any{"ZipFile": fixedZip("app.py", "def handler(e, c):\n    return e\n")}}
	for k, v := range fields {
		if v == nil {
			delete(in, k)
			continue
		}
		in[k] = v
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestGoldenFunctions: CreateFunction and every one of its rejections, GetFunction and
// GetFunctionConfiguration (qualified too), ListFunctions, the code and logs endpoints.
func TestGoldenFunctions(t *testing.T) {
	const fns = "/2015-03-31/functions"
	c := func(name string, fields map[string]any) string { return createBody(name, fields) }
	runGolden(t, []step{
		{"create", "POST", fns, c("golden-fn-a", nil)},
		{"create-taken", "POST", fns, c("golden-fn-a", nil)},
		{"create-bad-json", "POST", fns, `{"FunctionName":`},
		{"create-bad-type", "POST", fns, `{"FunctionName":"golden-fn-x","MemorySize":"big"}`},
		{"create-qualified", "POST", fns, c("golden-fn-x:1", nil)},
		{"create-bad-name", "POST", fns, c("golden fn", nil)},
		{"create-foreign-account", "POST", fns, c("arn:aws:lambda:us-east-1:999999999999:function:golden-fn-x", nil)},
		{"create-foreign-region", "POST", fns, c("arn:aws:lambda:eu-west-1:000000000000:function:golden-fn-x", nil)},
		{"create-no-role", "POST", fns, c("golden-fn-x", map[string]any{"Role": nil})},
		{"create-bad-role", "POST", fns, c("golden-fn-x", map[string]any{"Role": "admin"})},
		{"create-image", "POST", fns, c("golden-fn-x", map[string]any{"PackageType": "Image"})},
		{"create-bad-package-type", "POST", fns, c("golden-fn-x", map[string]any{"PackageType": "Tar"})},
		{"create-no-code", "POST", fns, c("golden-fn-x", map[string]any{"Code": nil})},
		{"create-no-runtime", "POST", fns, c("golden-fn-x", map[string]any{"Runtime": nil})},
		{"create-bad-runtime", "POST", fns, c("golden-fn-x", map[string]any{"Runtime": "cobol85"})},
		{"create-bad-handler", "POST", fns, c("golden-fn-x", map[string]any{"Handler": strings.Repeat("h", 200)})},
		{"create-bad-memory", "POST", fns, c("golden-fn-x", map[string]any{"MemorySize": 64})},
		{"create-bad-timeout", "POST", fns, c("golden-fn-x", map[string]any{"Timeout": 901})},
		{"create-bad-description", "POST", fns, c("golden-fn-x", map[string]any{"Description": strings.Repeat("d", 257)})},
		{"create-bad-ephemeral", "POST", fns, c("golden-fn-x", map[string]any{"EphemeralStorage": map[string]any{"Size": 100}})},
		{"create-bad-env", "POST", fns, c("golden-fn-x", map[string]any{"Environment": map[string]any{"Variables": map[string]any{"1BAD": "x"}}})},
		{"create-reserved-env", "POST", fns, c("golden-fn-x", map[string]any{"Environment": map[string]any{"Variables": map[string]any{"AWS_REGION": "x"}}})},
		{"create-bad-arch", "POST", fns, c("golden-fn-x", map[string]any{"Architectures": []string{"mips"}})},
		{"create-two-archs", "POST", fns, c("golden-fn-x", map[string]any{"Architectures": []string{"x86_64", "arm64"}})},
		{"create-bad-dlq", "POST", fns, c("golden-fn-x", map[string]any{"DeadLetterConfig": map[string]any{"TargetArn": "arn:aws:sqs:us-east-1:000000000000:q"}})},
		{"create-bad-tracing", "POST", fns, c("golden-fn-x", map[string]any{"TracingConfig": map[string]any{"Mode": "Loud"}})},
		{"create-bad-log-format", "POST", fns, c("golden-fn-x", map[string]any{"LoggingConfig": map[string]any{"LogFormat": "XML"}})},
		{"create-bad-tags", "POST", fns, c("golden-fn-x", map[string]any{"Tags": map[string]string{strings.Repeat("k", 129): "v"}})},
		{"create-s3-code", "POST", fns, c("golden-fn-x", map[string]any{"Code": map[string]any{"S3Bucket": "b", "S3Key": "k"}})},
		{"create-image-uri", "POST", fns, c("golden-fn-x", map[string]any{"Code": map[string]any{"ImageUri": "repo/img:1"}})},
		{"create-no-zip", "POST", fns, c("golden-fn-x", map[string]any{"Code": map[string]any{}})},
		{"create-bad-zip", "POST", fns, c("golden-fn-x", map[string]any{"Code": map[string]any{"ZipFile": "aGVsbG8="}})},
		{"create-bad-layer-arn", "POST", fns, c("golden-fn-x", map[string]any{"Layers": []string{"layer-1"}})},
		{"create-missing-layer", "POST", fns, c("golden-fn-x", map[string]any{"Layers": []string{"arn:aws:lambda:us-east-1:000000000000:layer:golden-fn-none:1"}})},
		{"create-foreign-layer", "POST", fns, c("golden-fn-x", map[string]any{"Layers": []string{"arn:aws:lambda:us-east-1:999999999999:layer:golden-fn-none:1"}})},
		{"create-six-layers", "POST", fns, c("golden-fn-x", map[string]any{"Layers": []string{
			"arn:aws:lambda:us-east-1:000000000000:layer:l:1", "arn:aws:lambda:us-east-1:000000000000:layer:l:2",
			"arn:aws:lambda:us-east-1:000000000000:layer:l:3", "arn:aws:lambda:us-east-1:000000000000:layer:l:4",
			"arn:aws:lambda:us-east-1:000000000000:layer:l:5", "arn:aws:lambda:us-east-1:000000000000:layer:l:6"}})},
		{"get-refused", "GET", fns + "/golden-fn-x", ""},
		{"publish-layer", "POST", "/2018-10-31/layers/golden-fn-layer/versions", `{"Content":{"ZipFile":"` + fixedZip("app.py", "X = 1\n") + `"}}`},
		{"create-full", "POST", fns, c("golden-fn-b", map[string]any{"Description": "full", "MemorySize": 256, "Timeout": 30,
			"Environment": map[string]any{"Variables": map[string]string{"AA": "1"}}, "Tags": map[string]string{"team": "x"},
			"EphemeralStorage": map[string]any{"Size": 1024}, "TracingConfig": map[string]any{"Mode": "Active"},
			"LoggingConfig": map[string]any{"LogFormat": "JSON", "LogGroup": "/custom"}, "Architectures": []string{"arm64"},
			"DeadLetterConfig": map[string]any{"TargetArn": "arn:aws:lambda:us-east-1:000000000000:function:golden-fn-a"},
			"Layers":           []string{"arn:aws:lambda:us-east-1:000000000000:layer:golden-fn-layer:1"}, "Publish": true})},
		{"create-c", "POST", fns, c("golden-fn-c", map[string]any{"Code": map[string]any{"ZipFile": fixedZip("app.py", "def handler(e, c):\n    return 3\n")}})},
		{"get", "GET", fns + "/golden-fn-a", ""},
		{"get-arn", "GET", fns + "/arn:aws:lambda:us-east-1:000000000000:function:golden-fn-b", ""},
		{"get-latest", "GET", fns + "/golden-fn-b?Qualifier=$LATEST", ""},
		{"get-version", "GET", fns + "/golden-fn-b:1", ""},
		{"get-missing-version", "GET", fns + "/golden-fn-b?Qualifier=9", ""},
		{"get-missing-alias", "GET", fns + "/golden-fn-b?Qualifier=live", ""},
		{"get-bad-qualifier", "GET", fns + "/golden-fn-b?Qualifier=a.b", ""},
		{"get-qualifier-mismatch", "GET", fns + "/golden-fn-b:1?Qualifier=2", ""},
		{"get-missing", "GET", fns + "/golden-fn-none", ""},
		{"get-foreign-account", "GET", fns + "/arn:aws:lambda:us-east-1:999999999999:function:golden-fn-a", ""},
		{"get-config", "GET", fns + "/golden-fn-a/configuration", ""},
		{"get-config-version", "GET", fns + "/golden-fn-b/configuration?Qualifier=1", ""},
		{"get-config-missing", "GET", fns + "/golden-fn-none/configuration", ""},
		{"get-config-missing-version", "GET", fns + "/golden-fn-a/configuration?Qualifier=3", ""},
		{"code", "GET", "/flint/v1/functions/golden-fn-a/code", ""},
		{"code-missing", "GET", "/flint/v1/functions/golden-fn-none/code", ""},
		{"code-version", "GET", "/flint/v1/functions/golden-fn-b:1/code", ""},
		{"logs", "GET", "/flint/v1/functions/golden-fn-a/logs", ""},
		{"logs-missing", "GET", "/flint/v1/functions/golden-fn-none/logs", ""},
		{"logs-bad-tail", "GET", "/flint/v1/functions/golden-fn-a/logs?tail=x", ""},
		{"list", "GET", fns + "?Marker=golden-fn-&MaxItems=2", ""},
		{"list-next", "GET", fns + "/?Marker=golden-fn-a&MaxItems=1", ""},
		{"list-all", "GET", fns + "?FunctionVersion=ALL&Marker=golden-fn-&MaxItems=1", ""},
		{"list-bad-version", "GET", fns + "?FunctionVersion=1", ""},
		{"list-bad-max", "GET", fns + "?MaxItems=10001", ""},
		{"account-settings", "GET", "/2016-08-19/account-settings", ""},
		{"account-settings-slash", "GET", "/2016-08-19/account-settings/", ""},
	})
}

// TestGoldenFunctionUpdates: UpdateFunctionConfiguration, UpdateFunctionCode (DryRun, Publish)
// and their rejections, and the function's state after them.
func TestGoldenFunctionUpdates(t *testing.T) {
	const fn = "/2015-03-31/functions/golden-fn-upd"
	code2 := fixedZip("app.py", "def handler(e, c):\n    return 2\n")
	runGolden(t, []step{
		{"create", "POST", "/2015-03-31/functions", createBody("golden-fn-upd", map[string]any{
			"Environment": map[string]any{"Variables": map[string]string{"AA": "1"}}})},
		{"config", "PUT", fn + "/configuration", `{"Description":"d","Timeout":10,"MemorySize":512,"Handler":"app.h2","Environment":{"Variables":{"BB":"2"}},"TracingConfig":{"Mode":"Active"},"LoggingConfig":{"LogFormat":"JSON"},"EphemeralStorage":{"Size":2048},"KMSKeyArn":"arn:aws:kms:us-east-1:000000000000:key/k"}`},
		{"config-stale", "PUT", fn + "/configuration", `{"Description":"x","RevisionId":"stale"}`},
		{"config-bad-json", "PUT", fn + "/configuration", `{"Description":`},
		{"config-bad-role", "PUT", fn + "/configuration", `{"Role":"admin"}`},
		{"config-bad-memory", "PUT", fn + "/configuration", `{"MemorySize":20000}`},
		{"config-bad-runtime", "PUT", fn + "/configuration", `{"Runtime":"cobol85"}`},
		{"config-bad-layer", "PUT", fn + "/configuration", `{"Layers":["arn:aws:lambda:us-east-1:000000000000:layer:golden-fn-none:1"]}`},
		{"config-bad-dlq", "PUT", fn + "/configuration", `{"DeadLetterConfig":{"TargetArn":"nope"}}`},
		{"config-qualified", "PUT", fn + "/configuration?Qualifier=1", `{"Description":"x"}`},
		{"config-missing", "PUT", "/2015-03-31/functions/golden-fn-none/configuration", `{"Description":"x"}`},
		{"after-rejections", "GET", fn + "/configuration", ""},
		{"config-clear-env", "PUT", fn + "/configuration", `{"Environment":{},"Layers":[]}`},
		{"code-dry-run", "PUT", fn + "/code", `{"ZipFile":"` + code2 + `","DryRun":true}`},
		{"code-dry-run-no-zip", "PUT", fn + "/code", `{"DryRun":true}`},
		{"code-dry-run-bad-zip", "PUT", fn + "/code", `{"ZipFile":"aGVsbG8=","DryRun":true}`},
		{"after-dry-run", "GET", fn + "/configuration", ""},
		{"code-bad-json", "PUT", fn + "/code", `{"ZipFile":1}`},
		{"code-no-zip", "PUT", fn + "/code", `{}`},
		{"code-bad-zip", "PUT", fn + "/code", `{"ZipFile":"aGVsbG8="}`},
		{"code-s3", "PUT", fn + "/code", `{"S3Bucket":"b","S3Key":"k"}`},
		{"code-image", "PUT", fn + "/code", `{"ImageUri":"repo/img:1"}`},
		{"code-stale", "PUT", fn + "/code", `{"ZipFile":"` + code2 + `","RevisionId":"stale"}`},
		{"code-bad-arch", "PUT", fn + "/code", `{"ZipFile":"` + code2 + `","Architectures":["mips"]}`},
		{"code-missing", "PUT", "/2015-03-31/functions/golden-fn-none/code", `{"ZipFile":"` + code2 + `"}`},
		{"code-qualified", "PUT", fn + ":1/code", `{"ZipFile":"` + code2 + `"}`},
		{"after-code-rejections", "GET", fn, ""},
		{"code", "PUT", fn + "/code", `{"ZipFile":"` + code2 + `","Architectures":["arm64"]}`},
		{"code-publish", "PUT", fn + "/code", `{"ZipFile":"` + fixedZip("app.py", "def handler(e, c):\n    return 22\n") + `","Publish":true}`},
		{"code-publish-same", "PUT", fn + "/code", `{"ZipFile":"` + fixedZip("app.py", "def handler(e, c):\n    return 22\n") + `","Publish":true}`},
		{"versions", "GET", fn + "/versions", ""},
		{"fetch-code", "GET", "/flint/v1/functions/golden-fn-upd/code", ""},
	})
}

// TestGoldenVersions: PublishVersion, ListVersionsByFunction, DeleteFunction of a version and
// of the function, and their rejections.
func TestGoldenVersions(t *testing.T) {
	const fn = "/2015-03-31/functions/golden-fn-ver"
	runGolden(t, []step{
		{"create", "POST", "/2015-03-31/functions", createBody("golden-fn-ver", nil)},
		{"publish", "POST", fn + "/versions", `{"Description":"first"}`},
		{"publish-unchanged", "POST", fn + "/versions", `{}`},
		{"publish-bad-json", "POST", fn + "/versions", `{"Description":`},
		{"publish-stale", "POST", fn + "/versions", `{"RevisionId":"stale"}`},
		{"publish-bad-sha", "POST", fn + "/versions", `{"CodeSha256":"abc"}`},
		{"publish-qualified", "POST", fn + ":1/versions", `{}`},
		{"publish-missing", "POST", "/2015-03-31/functions/golden-fn-none/versions", `{}`},
		{"change", "PUT", fn + "/configuration", `{"Description":"second"}`},
		{"publish-2", "POST", fn + "/versions", `{}`},
		{"change-again", "PUT", fn + "/configuration", `{"Timeout":7}`},
		{"publish-3", "POST", fn + "/versions", `{}`},
		{"list", "GET", fn + "/versions", ""},
		{"list-page", "GET", fn + "/versions?MaxItems=2", ""},
		{"list-page-2", "GET", fn + "/versions?MaxItems=2&Marker=2", ""},
		{"list-bad-max", "GET", fn + "/versions?MaxItems=0", ""},
		{"list-qualified", "GET", fn + ":1/versions", ""},
		{"list-missing", "GET", "/2015-03-31/functions/golden-fn-none/versions", ""},
		{"alias", "POST", fn + "/aliases", `{"Name":"live","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.5}}}`},
		{"get-alias-config", "GET", fn + "/configuration?Qualifier=live", ""},
		{"delete-aliased", "DELETE", fn + "?Qualifier=1", ""},
		{"delete-weighted", "DELETE", fn + ":2", ""},
		{"delete-latest", "DELETE", fn + "?Qualifier=$LATEST", ""},
		{"delete-alias-qualifier", "DELETE", fn + "?Qualifier=live", ""},
		{"delete-missing-version", "DELETE", fn + "?Qualifier=9", ""},
		{"delete-missing-function-version", "DELETE", "/2015-03-31/functions/golden-fn-none?Qualifier=1", ""},
		{"delete-bad-qualifier", "DELETE", fn + "?Qualifier=a.b", ""},
		{"delete-version", "DELETE", fn + "?Qualifier=3", ""},
		{"delete-version-again", "DELETE", fn + ":3", ""},
		{"list-after", "GET", fn + "/versions", ""},
		{"delete", "DELETE", fn, ""},
		{"delete-again", "DELETE", fn, ""},
		{"get-deleted", "GET", fn, ""},
		{"delete-foreign", "DELETE", "/2015-03-31/functions/arn:aws:lambda:us-east-1:999999999999:function:golden-fn-ver", ""},
	})
}

// TestGoldenConcurrency: PutFunctionConcurrency, GetFunctionConcurrency,
// DeleteFunctionConcurrency and what GetFunction shows of them.
func TestGoldenConcurrency(t *testing.T) {
	const put = "/2017-10-31/functions/golden-fn-conc/concurrency"
	const get = "/2019-09-30/functions/golden-fn-conc/concurrency"
	runGolden(t, []step{
		{"create", "POST", "/2015-03-31/functions", createBody("golden-fn-conc", nil)},
		{"get-none", "GET", get, ""},
		{"put", "PUT", put, `{"ReservedConcurrentExecutions":10}`},
		{"get", "GET", get, ""},
		{"function", "GET", "/2015-03-31/functions/golden-fn-conc", ""},
		{"put-zero", "PUT", put, `{"ReservedConcurrentExecutions":0}`},
		{"put-null", "PUT", put, `{}`},
		{"put-negative", "PUT", put, `{"ReservedConcurrentExecutions":-1}`},
		{"put-too-many", "PUT", put, `{"ReservedConcurrentExecutions":1000}`},
		{"put-bad-json", "PUT", put, `{"ReservedConcurrentExecutions":"x"}`},
		{"put-qualified", "PUT", put + "?Qualifier=1", `{"ReservedConcurrentExecutions":1}`},
		{"put-missing", "PUT", "/2017-10-31/functions/golden-fn-none/concurrency", `{"ReservedConcurrentExecutions":1}`},
		{"get-after-rejections", "GET", get, ""},
		{"get-missing", "GET", "/2019-09-30/functions/golden-fn-none/concurrency", ""},
		{"account-settings", "GET", "/2016-08-19/account-settings", ""},
		{"delete", "DELETE", put, ""},
		{"delete-again", "DELETE", put, ""},
		{"delete-missing", "DELETE", "/2017-10-31/functions/golden-fn-none/concurrency", ""},
		{"get-deleted", "GET", get, ""},
		{"function-after", "GET", "/2015-03-31/functions/golden-fn-conc", ""},
	})
}
