package api_test

import (
	"regexp"
	"testing"
)

func init() {
	// A URL's address holds its random id and the server's port.
	scrubs = append(scrubs, scrub{regexp.MustCompile(`[a-z0-9]{32}\.lambda-url\.([a-z0-9-]+)\.localhost:\d+`), "<url-id>.lambda-url.$1.localhost:<port>"})
}

// TestGoldenURLs: CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
// DeleteFunctionUrlConfig, ListFunctionUrlConfigs and their rejections, for $LATEST and an alias.
// ListFunctionUrlConfigs runs with one URL: the order of several is their random ids'.
func TestGoldenURLs(t *testing.T) {
	const fn = "/2021-10-31/functions/golden-url"
	runGolden(t, append(createFunction("golden-url"), []step{
		{"publish", "POST", "/2015-03-31/functions/golden-url/versions", `{}`},
		{"create-alias", "POST", "/2015-03-31/functions/golden-url/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"list-none", "GET", fn + "/urls", ""},
		{"get-none", "GET", fn + "/url", ""},
		{"create-no-auth", "POST", fn + "/url", `{}`},
		{"create-bad-auth", "POST", fn + "/url", `{"AuthType":"OPEN"}`},
		{"create-bad-mode", "POST", fn + "/url", `{"AuthType":"NONE","InvokeMode":"STREAM"}`},
		{"create-bad-max-age", "POST", fn + "/url", `{"AuthType":"NONE","Cors":{"MaxAge":86401}}`},
		{"create-too-many-methods", "POST", fn + "/url", `{"AuthType":"NONE","Cors":{"AllowMethods":["GET","PUT","POST","DELETE","PATCH","HEAD","OPTIONS"]}}`},
		{"create-bad-json", "POST", fn + "/url", `{"AuthType":`},
		{"create-wrong-type", "POST", fn + "/url", `{"AuthType":1}`},
		{"create-missing-function", "POST", "/2021-10-31/functions/golden-url-nope/url", `{"AuthType":"NONE"}`},
		{"create-qualified-name", "POST", "/2021-10-31/functions/golden-url:live/url", `{"AuthType":"NONE"}`},
		{"create-foreign-account", "POST", "/2021-10-31/functions/arn:aws:lambda:us-east-1:999999999999:function:golden-url/url", `{"AuthType":"NONE"}`},
		{"create-version", "POST", fn + "/url?Qualifier=1", `{"AuthType":"NONE"}`},
		{"create-missing-alias", "POST", fn + "/url?Qualifier=gone", `{"AuthType":"NONE"}`},
		{"create", "POST", fn + "/url", `{"AuthType":"NONE","Cors":{"AllowOrigins":["*"],"AllowMethods":["GET"],"MaxAge":60}}`},
		{"create-taken", "POST", fn + "/url", `{"AuthType":"AWS_IAM"}`},
		{"create-latest-taken", "POST", fn + "/url?Qualifier=%24LATEST", `{"AuthType":"AWS_IAM"}`},
		{"create-alias-url", "POST", fn + "/url?Qualifier=live", `{"AuthType":"AWS_IAM","InvokeMode":"RESPONSE_STREAM"}`},
		{"create-by-arn", "POST", "/2021-10-31/functions/arn:aws:lambda:us-east-1:000000000000:function:golden-url/url", `{"AuthType":"NONE"}`},
		{"get", "GET", fn + "/url", ""},
		{"get-latest", "GET", fn + "/url?Qualifier=%24LATEST", ""},
		{"get-alias", "GET", fn + "/url?Qualifier=live", ""},
		{"get-version", "GET", fn + "/url?Qualifier=1", ""},
		{"get-missing-function", "GET", "/2021-10-31/functions/golden-url-nope/url", ""},
		{"update-bad-auth", "PUT", fn + "/url", `{"AuthType":"OPEN"}`},
		{"update-bad-cors", "PUT", fn + "/url", `{"Cors":{"MaxAge":-1}}`},
		{"update-bad-json", "PUT", fn + "/url", `{`},
		{"update-missing-alias", "PUT", fn + "/url?Qualifier=gone", `{"AuthType":"NONE"}`},
		{"update-nothing", "PUT", fn + "/url", `{}`},
		{"update", "PUT", fn + "/url", `{"AuthType":"AWS_IAM","Cors":{"AllowOrigins":["https://example.com"],"AllowCredentials":true}}`},
		{"update-alias", "PUT", fn + "/url?Qualifier=live", `{"InvokeMode":"BUFFERED"}`},
		{"delete-alias", "DELETE", fn + "/url?Qualifier=live", ""},
		{"list", "GET", fn + "/urls", ""},
		{"list-qualified-name", "GET", "/2021-10-31/functions/golden-url:live/urls", ""},
		{"list-missing-function", "GET", "/2021-10-31/functions/golden-url-nope/urls", ""},
		{"delete", "DELETE", fn + "/url", ""},
		{"delete-again", "DELETE", fn + "/url", ""},
		{"get-deleted", "GET", fn + "/url", ""},
		{"delete-version", "DELETE", fn + "/url?Qualifier=1", ""},
		{"list-empty", "GET", fn + "/urls", ""},
	}...))
}
