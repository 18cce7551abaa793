package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestGoldenProvisioned: Put/Get/Delete/ListProvisionedConcurrencyConfig(s) and their rejections.
// The put answers IN_PROGRESS (no environment is ready within the request); the test then waits
// for READY, so that the answers after it are the same every run.
func TestGoldenProvisioned(t *testing.T) {
	const fn = "/2019-09-30/functions/golden-prov/provisioned-concurrency"
	other := createFunction("golden-prov-r")
	other[0].name = "create-function-reserved"
	runGolden(t, append(append(createFunction("golden-prov"), other...), []step{
		{"publish", "POST", "/2015-03-31/functions/golden-prov/versions", `{}`},
		{"alias", "POST", "/2015-03-31/functions/golden-prov/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"publish-reserved", "POST", "/2015-03-31/functions/golden-prov-r/versions", `{}`},
		{"reserve", "PUT", "/2017-10-31/functions/golden-prov-r/concurrency", `{"ReservedConcurrentExecutions":1}`},
		{"put-over-reserved", "PUT", "/2019-09-30/functions/golden-prov-r/provisioned-concurrency?Qualifier=1", `{"ProvisionedConcurrentExecutions":2}`},
		{"unreserve", "DELETE", "/2017-10-31/functions/golden-prov-r/concurrency", ""},
		{"get-none", "GET", fn + "?Qualifier=1", ""},
		{"delete-none", "DELETE", fn + "?Qualifier=live", ""},
		{"list-none", "GET", fn + "?List=ALL", ""},
		{"put-no-qualifier", "PUT", fn, `{"ProvisionedConcurrentExecutions":1}`},
		{"put-latest", "PUT", fn + "?Qualifier=$LATEST", `{"ProvisionedConcurrentExecutions":1}`},
		{"put-missing-version", "PUT", fn + "?Qualifier=9", `{"ProvisionedConcurrentExecutions":1}`},
		{"put-missing-alias", "PUT", fn + "?Qualifier=nope", `{"ProvisionedConcurrentExecutions":1}`},
		{"put-zero", "PUT", fn + "?Qualifier=1", `{"ProvisionedConcurrentExecutions":0}`},
		{"put-null", "PUT", fn + "?Qualifier=1", `{}`},
		{"put-bad-json", "PUT", fn + "?Qualifier=1", `{"ProvisionedConcurrentExecutions":`},
		{"put-wrong-type", "PUT", fn + "?Qualifier=1", `{"ProvisionedConcurrentExecutions":"1"}`},
		{"put-qualified-name", "PUT", "/2019-09-30/functions/golden-prov:1/provisioned-concurrency?Qualifier=live", `{"ProvisionedConcurrentExecutions":1}`},
		{"put-missing-function", "PUT", "/2019-09-30/functions/golden-prov-nope/provisioned-concurrency?Qualifier=1", `{"ProvisionedConcurrentExecutions":1}`},
		{"put-foreign-account", "PUT", "/2019-09-30/functions/arn:aws:lambda:us-east-1:210987654321:function:golden-prov/provisioned-concurrency?Qualifier=1", `{"ProvisionedConcurrentExecutions":1}`},
		{"get-no-qualifier", "GET", fn, ""},
		{"delete-latest", "DELETE", fn + "?Qualifier=$LATEST", ""},
		{"put", "PUT", fn + "?Qualifier=1", `{"ProvisionedConcurrentExecutions":1}`},
	}...))
	waitReady(t, fn+"?Qualifier=1")
	runGolden(t, []step{
		{"get", "GET", fn + "?Qualifier=1", ""},
		{"get-alias-none", "GET", fn + "?Qualifier=live", ""},
		{"list", "GET", fn + "?List=ALL", ""},
		{"list-page", "GET", fn + "?List=ALL&MaxItems=1", ""},
		{"list-after-marker", "GET", fn + "?List=ALL&Marker=1", ""},
		{"list-bad-max", "GET", fn + "?List=ALL&MaxItems=0", ""},
		{"list-missing-function-bad-max", "GET", "/2019-09-30/functions/golden-prov-nope/provisioned-concurrency?List=ALL&MaxItems=0", ""},
		{"list-qualified-name", "GET", "/2019-09-30/functions/golden-prov:1/provisioned-concurrency?List=ALL", ""},
		{"list-missing-function", "GET", "/2019-09-30/functions/golden-prov-nope/provisioned-concurrency?List=ALL", ""},
		{"delete", "DELETE", fn + "?Qualifier=1", ""},
		{"delete-again", "DELETE", fn + "?Qualifier=1", ""},
		{"get-deleted", "GET", fn + "?Qualifier=1", ""},
		{"list-empty", "GET", fn + "?List=ALL", ""},
	})
}

// waitReady polls a provisioned-concurrency config until its Status is READY.
func waitReady(t *testing.T, path string) {
	t.Helper()
	url := sharedServer(t)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Status string }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		if out.Status == "READY" {
			return
		}
	}
	t.Fatalf("%s never became READY", path)
}
