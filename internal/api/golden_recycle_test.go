package api_test

import "testing"

// TestGoldenRecycle: Flint's recycle endpoint (POST /flint/v1/functions/NAME/recycle, what
// `flint bench --cold` calls): idle environments are counted as retired, and a function,
// version or alias that does not exist, a bad qualifier and another account's ARN get the
// errors every function operation gives.
func TestGoldenRecycle(t *testing.T) {
	const fn = "/flint/v1/functions/golden-recycle"
	runGolden(t, []step{
		{"create", "POST", "/2015-03-31/functions", createBody("golden-recycle", nil)},
		{"recycle-none", "POST", fn + "/recycle", ""},
		{"invoke", "POST", "/2015-03-31/functions/golden-recycle/invocations", `{"a":1}`},
		{"recycle-one", "POST", fn + "/recycle", ""},
		{"recycle-again", "POST", fn + "/recycle?Qualifier=$LATEST", ""},
		{"recycle-unknown", "POST", "/flint/v1/functions/golden-recycle-none/recycle", ""},
		{"recycle-unknown-version", "POST", fn + "/recycle?Qualifier=7", ""},
		{"recycle-unknown-alias", "POST", fn + "/recycle?Qualifier=live", ""},
		{"recycle-bad-qualifier", "POST", fn + "/recycle?Qualifier=a.b", ""},
		{"recycle-foreign-account", "POST", "/flint/v1/functions/arn:aws:lambda:us-east-1:999999999999:function:golden-recycle/recycle", ""},
	})
}
