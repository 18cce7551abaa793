package api_test

import (
	"regexp"
	"testing"
)

func init() {
	// An API's address holds its random apiId and the server's port.
	scrubs = append(scrubs,
		scrub{regexp.MustCompile(`[a-z0-9]{10}\.execute-api\.([a-z0-9-]+)\.localhost:\d+`), "<api-id>.execute-api.$1.localhost:<port>"},
		scrub{regexp.MustCompile(`"apiId": "[a-z0-9]{10}"`), `"apiId": "<api-id>"`})
}

// TestGoldenAPIs: the management API of API Gateway APIs (/flint/v1/apis, APIGW_CONTRACT.md):
// PUT (create, replace), GET, list, DELETE and every rejection.
func TestGoldenAPIs(t *testing.T) {
	const p = "/flint/v1/apis/"
	route := func(method, path, fn, extra string) string {
		return `{"method":"` + method + `","path":"` + path + `","function":"` + fn + `"` + extra + `}`
	}
	api := func(protocol, extra string, routes ...string) string {
		out := `{"protocol":"` + protocol + `"` + extra + `,"routes":[`
		for i, r := range routes {
			if i > 0 {
				out += ","
			}
			out += r
		}
		return out + "]}"
	}
	get := route("GET", "/items/{id}", "golden-api", "")
	runGolden(t, append(createFunction("golden-api"), []step{
		{"publish", "POST", "/2015-03-31/functions/golden-api/versions", `{}`},
		{"create-alias", "POST", "/2015-03-31/functions/golden-api/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"put-http", "PUT", p + "golden-HttpApi", api("HTTP", `,"stageVariables":{"env":"dev"},"tags":{"flint:stack":"golden"}`, get,
			route("ANY", "/files/{proxy+}", "arn:aws:lambda:us-east-1:000000000000:function:golden-api:live", ""),
			route("POST", "/items", "golden-api", `,"qualifier":"1","payloadFormatVersion":"1.0"`),
			route("ANY", "$default", "golden-api", `,"timeoutInMillis":5000`))},
		{"put-rest", "PUT", p + "golden-RestApi", api("REST", "", get, route("any", "/{proxy+}", "golden-api", ""))},
		{"put-rest-stage", "PUT", p + "golden-RestApi", api("REST", `,"stage":"v1"`, get)},
		{"get", "GET", p + "golden-HttpApi", ""},
		{"list", "GET", "/flint/v1/apis", ""},
		{"put-bad-name", "PUT", p + "golden.api", api("HTTP", "", get)},
		{"put-bad-protocol", "PUT", p + "golden-HttpApi", api("WEBSOCKET", "", get)},
		{"put-bad-stage", "PUT", p + "golden-HttpApi", api("REST", `,"stage":"$default"`, get)},
		{"put-bad-stage-variable", "PUT", p + "golden-HttpApi", api("HTTP", `,"stageVariables":{"a b":"x"}`, get)},
		{"put-bad-stage-variable-value", "PUT", p + "golden-HttpApi", api("HTTP", `,"stageVariables":{"ab":"x y"}`, get)},
		{"put-bad-method", "PUT", p + "golden-HttpApi", api("HTTP", "", route("FETCH", "/a", "golden-api", ""))},
		{"put-bad-path", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "a/b", "golden-api", ""))},
		{"put-greedy-not-last", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/{p+}/b", "golden-api", ""))},
		{"put-rest-default-route", "PUT", p + "golden-HttpApi", api("REST", "", route("ANY", "$default", "golden-api", ""))},
		{"put-duplicate", "PUT", p + "golden-HttpApi", api("HTTP", "", get, route("GET", "/items/{key}", "golden-api", ""))},
		{"put-bad-payload-format", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "golden-api", `,"payloadFormatVersion":"3.0"`))},
		{"put-rest-payload-2", "PUT", p + "golden-HttpApi", api("REST", "", route("GET", "/a", "golden-api", `,"payloadFormatVersion":"2.0"`))},
		{"put-bad-timeout", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "golden-api", `,"timeoutInMillis":30001`))},
		{"put-missing-function", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "", ""))},
		{"put-unknown-function", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "golden-api-nope", ""))},
		{"put-unknown-alias", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "golden-api", `,"qualifier":"gone"`))},
		{"put-unknown-version", "PUT", p + "golden-HttpApi", api("HTTP", "", route("GET", "/a", "golden-api", `,"qualifier":"9"`))},
		{"put-bad-json", "PUT", p + "golden-HttpApi", `{"protocol":`},
		{"put-wrong-type", "PUT", p + "golden-HttpApi", `{"protocol":"HTTP","routes":{}}`},
		{"get-after-rejections", "GET", p + "golden-HttpApi", ""},
		{"get-missing", "GET", p + "golden-nope", ""},
		{"delete", "DELETE", p + "golden-RestApi", ""},
		{"delete-again", "DELETE", p + "golden-RestApi", ""},
		{"get-deleted", "GET", p + "golden-RestApi", ""},
	}...))
}
