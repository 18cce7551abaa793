package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

// operations names the Lambda API operation each route that takes a FunctionName serves: the
// name decides how an ARN of another account is refused (lambda.Account.Resolve).
var operations = map[string]string{
	"POST /2015-03-31/functions/{name}/invocations":               "Invoke",
	"GET /2015-03-31/functions/{name}":                            "GetFunction",
	"DELETE /2015-03-31/functions/{name}":                         "DeleteFunction",
	"GET /2015-03-31/functions/{name}/configuration":              "GetFunctionConfiguration",
	"PUT /2015-03-31/functions/{name}/configuration":              "UpdateFunctionConfiguration",
	"PUT /2015-03-31/functions/{name}/code":                       "UpdateFunctionCode",
	"POST /2015-03-31/functions/{name}/versions":                  "PublishVersion",
	"GET /2015-03-31/functions/{name}/versions":                   "ListVersionsByFunction",
	"POST /2015-03-31/functions/{name}/aliases":                   "CreateAlias",
	"GET /2015-03-31/functions/{name}/aliases":                    "ListAliases",
	"GET /2015-03-31/functions/{name}/aliases/{alias}":            "GetAlias",
	"PUT /2015-03-31/functions/{name}/aliases/{alias}":            "UpdateAlias",
	"DELETE /2015-03-31/functions/{name}/aliases/{alias}":         "DeleteAlias",
	"PUT /2017-10-31/functions/{name}/concurrency":                "PutFunctionConcurrency",
	"DELETE /2017-10-31/functions/{name}/concurrency":             "DeleteFunctionConcurrency",
	"GET /2019-09-30/functions/{name}/concurrency":                "GetFunctionConcurrency",
	"PUT /2019-09-30/functions/{name}/provisioned-concurrency":    "PutProvisionedConcurrencyConfig",
	"GET /2019-09-30/functions/{name}/provisioned-concurrency":    "GetProvisionedConcurrencyConfig",
	"DELETE /2019-09-30/functions/{name}/provisioned-concurrency": "DeleteProvisionedConcurrencyConfig",
	"POST /2014-11-13/functions/{name}/invoke-async":              "InvokeAsync",
	"POST /2014-11-13/functions/{name}/invoke-async/{$}":          "InvokeAsync",
	"PUT /2019-09-25/functions/{name}/event-invoke-config":        "PutFunctionEventInvokeConfig",
	"POST /2019-09-25/functions/{name}/event-invoke-config":       "UpdateFunctionEventInvokeConfig",
	"GET /2019-09-25/functions/{name}/event-invoke-config":        "GetFunctionEventInvokeConfig",
	"DELETE /2019-09-25/functions/{name}/event-invoke-config":     "DeleteFunctionEventInvokeConfig",
	"GET /2019-09-25/functions/{name}/event-invoke-config/list":   "ListFunctionEventInvokeConfigs",
	"POST /2021-10-31/functions/{name}/url":                       "CreateFunctionUrlConfig",
	"GET /2021-10-31/functions/{name}/url":                        "GetFunctionUrlConfig",
	"PUT /2021-10-31/functions/{name}/url":                        "UpdateFunctionUrlConfig",
	"DELETE /2021-10-31/functions/{name}/url":                     "DeleteFunctionUrlConfig",
	"GET /2021-10-31/functions/{name}/urls":                       "ListFunctionUrlConfigs",
	"GET /2017-03-31/tags/{arn}":                                  "ListTags",
	"POST /2017-03-31/tags/{arn}":                                 "TagResource",
	"DELETE /2017-03-31/tags/{arn}":                               "UntagResource",
	"POST /2015-03-31/functions/{name}/policy":                    "AddPermission",
	"GET /2015-03-31/functions/{name}/policy":                     "GetPolicy",
	"DELETE /2015-03-31/functions/{name}/policy/{sid}":            "RemovePermission",
	"GET /flint/v1/functions/{name}/logs":                         "GetFunction",
	"GET /flint/v1/functions/{name}/code":                         "GetFunction",
	"POST /flint/v1/functions/{name}/recycle":                     "GetFunction",
	"POST /2015-03-31/event-source-mappings":                      "CreateEventSourceMapping",
	"POST /2015-03-31/event-source-mappings/{$}":                  "CreateEventSourceMapping",
	"GET /2015-03-31/event-source-mappings":                       "ListEventSourceMappings",
	"GET /2015-03-31/event-source-mappings/{$}":                   "ListEventSourceMappings",
	"PUT /2015-03-31/event-source-mappings/{uuid}":                "UpdateEventSourceMapping",
	"POST /2015-03-31/functions":                                  "CreateFunction",
	"PUT /2020-06-30/functions/{name}/code-signing-config":        "PutFunctionCodeSigningConfig",
	"GET /2020-06-30/functions/{name}/code-signing-config":        "GetFunctionCodeSigningConfig",
	"DELETE /2020-06-30/functions/{name}/code-signing-config":     "DeleteFunctionCodeSigningConfig",
	"PUT /2024-08-31/functions/{name}/recursion-config":           "PutFunctionRecursionConfig",
	"GET /2024-08-31/functions/{name}/recursion-config":           "GetFunctionRecursionConfig",
	"POST /2015-03-31/functions/{$}":                              "CreateFunction",
}

// target is the function the request r addresses, for a control-plane service.
func (a *API) target(r *http.Request) control.Target {
	return control.Target{Op: operations[r.Pattern], Name: r.PathValue("name"), Qualifier: r.URL.Query().Get("Qualifier")}
}
