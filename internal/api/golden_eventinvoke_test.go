package api_test

import (
	"strings"
	"testing"
)

// EventInvokeConfig's LastModified is an epoch time (the same scrub as the mappings').

// TestGoldenEventInvoke: Put/Update/Get/Delete/ListFunctionEventInvokeConfigs and the legacy
// InvokeAsync, and their rejections.
func TestGoldenEventInvoke(t *testing.T) {
	const (
		fn    = "/2019-09-25/functions/golden-eic/event-invoke-config"
		async = "/2014-11-13/functions/golden-eic/invoke-async"
		dest  = `{"OnFailure":{"Destination":"arn:aws:lambda:us-east-1:000000000000:function:golden-eic-dlq"}}`
	)
	dlq := createFunction("golden-eic-dlq")[0]
	dlq.name = "create-destination-function"
	steps := append(createFunction("golden-eic"), dlq)
	runGolden(t, append(steps, []step{
		{"publish", "POST", "/2015-03-31/functions/golden-eic/versions", `{}`},
		{"alias", "POST", "/2015-03-31/functions/golden-eic/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"get-none", "GET", fn, ""},
		{"delete-none", "DELETE", fn, ""},
		{"list-none", "GET", fn + "/list", ""},
		{"put", "PUT", fn, `{"MaximumRetryAttempts":1,"MaximumEventAgeInSeconds":600,"DestinationConfig":` + dest + `}`},
		{"get", "GET", fn, ""},
		{"get-latest", "GET", fn + "?Qualifier=$LATEST", ""},
		{"update", "POST", fn, `{"MaximumRetryAttempts":0}`},
		{"get-updated", "GET", fn, ""},
		{"put-replaces", "PUT", fn, `{"MaximumEventAgeInSeconds":120}`},
		{"update-version-new", "POST", fn + "?Qualifier=1", `{"MaximumRetryAttempts":2}`},
		{"put-version", "PUT", fn + "?Qualifier=1", `{"MaximumRetryAttempts":2}`},
		{"put-alias", "PUT", fn + "?Qualifier=live", `{"DestinationConfig":{"OnSuccess":{"Destination":"arn:flint:jetstream:us-east-1:000000000000:stream/results"}}}`},
		{"put-no-settings", "PUT", fn, `{}`},
		{"put-missing-version", "PUT", fn + "?Qualifier=9", `{"MaximumRetryAttempts":1}`},
		{"put-missing-alias", "PUT", fn + "?Qualifier=nope", `{"MaximumRetryAttempts":1}`},
		{"put-bad-qualifier", "PUT", fn + "?Qualifier=a%21b", `{"MaximumRetryAttempts":1}`},
		{"put-bad-retries", "PUT", fn, `{"MaximumRetryAttempts":3}`},
		{"put-negative-retries", "PUT", fn, `{"MaximumRetryAttempts":-1}`},
		{"put-bad-age", "PUT", fn, `{"MaximumEventAgeInSeconds":59}`},
		{"put-old-age", "PUT", fn, `{"MaximumEventAgeInSeconds":21601}`},
		{"put-bad-destination", "PUT", fn, `{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:sqs:us-east-1:000000000000:q"}}}`},
		{"put-reserved-stream", "PUT", fn, `{"DestinationConfig":{"OnFailure":{"Destination":"arn:flint:jetstream:us-east-1:000000000000:stream/KV_x"}}}`},
		{"update-bad-retries", "POST", fn, `{"MaximumRetryAttempts":5}`},
		{"put-bad-json", "PUT", fn, `{"MaximumRetryAttempts":`},
		{"put-wrong-type", "PUT", fn, `{"MaximumRetryAttempts":"1"}`},
		{"put-destination-itself", "PUT", fn, `{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:lambda:us-east-1:000000000000:function:golden-eic"}}}`},
		{"put-destination-missing", "PUT", fn, `{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:lambda:us-east-1:000000000000:function:golden-eic-nope"}}}`},
		{"put-qualified-name", "PUT", "/2019-09-25/functions/golden-eic:1/event-invoke-config?Qualifier=live", `{"MaximumRetryAttempts":1}`},
		{"put-missing-function", "PUT", "/2019-09-25/functions/golden-eic-nope/event-invoke-config", `{"MaximumRetryAttempts":1}`},
		{"put-foreign-region", "PUT", "/2019-09-25/functions/arn:aws:lambda:eu-west-1:123456789012:function:golden-eic/event-invoke-config", `{"MaximumRetryAttempts":1}`},
		{"get-after-rejections", "GET", fn, ""},
		{"list", "GET", fn + "/list", ""},
		{"list-page", "GET", fn + "/list?MaxItems=2", ""},
		{"list-next", "GET", fn + "/list?MaxItems=2&Marker=2", ""},
		{"list-bad-marker", "GET", fn + "/list?Marker=x", ""},
		{"list-bad-max", "GET", fn + "/list?MaxItems=0", ""},
		{"list-missing-function-bad-max", "GET", "/2019-09-25/functions/golden-eic-nope/event-invoke-config/list?MaxItems=0", ""},
		{"list-missing-function", "GET", "/2019-09-25/functions/golden-eic-nope/event-invoke-config/list", ""},
		{"delete-version", "DELETE", fn + "?Qualifier=1", ""},
		{"delete-version-again", "DELETE", fn + "?Qualifier=1", ""},
		{"get-version-deleted", "GET", fn + "?Qualifier=1", ""},
		{"delete-missing-version", "DELETE", fn + "?Qualifier=9", ""},
		{"list-after-delete", "GET", fn + "/list", ""},
		{"invoke-async", "POST", async, `{"a":1}`},
		{"invoke-async-slash", "POST", async + "/", `{"a":2}`},
		{"invoke-async-version", "POST", async + "?Qualifier=1", `{"a":3}`},
		{"invoke-async-alias-in-name", "POST", "/2014-11-13/functions/golden-eic:live/invoke-async", `{"a":4}`},
		{"invoke-async-missing-version", "POST", async + "?Qualifier=9", `{}`},
		{"invoke-async-bad-qualifier", "POST", async + "?Qualifier=a%21b", `{}`},
		{"invoke-async-mismatched-qualifier", "POST", "/2014-11-13/functions/golden-eic:1/invoke-async?Qualifier=live", `{}`},
		{"invoke-async-missing-function", "POST", "/2014-11-13/functions/golden-eic-nope/invoke-async", `{}`},
		{"invoke-async-foreign-account", "POST", "/2014-11-13/functions/arn:aws:lambda:us-east-1:210987654321:function:golden-eic/invoke-async", `{}`},
		{"invoke-async-too-large", "POST", async, `"` + strings.Repeat("x", 1024*1024) + `"`},
	}...))
}
