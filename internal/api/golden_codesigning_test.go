package api_test

import (
	"regexp"
	"testing"
)

func init() {
	// Code signing configuration ids are random.
	scrubs = append(scrubs, scrub{regexp.MustCompile(`csc-[0-9a-f]{17}`), "<csc-id>"})
}

// TestGoldenCodeSigning: CreateCodeSigningConfig's answer and the rejections of the code
// signing operations (the lifecycle of one configuration, whose ARN is random, is
// server.TestCodeSigning's and the parity suite's), and the recursion config.
func TestGoldenCodeSigning(t *testing.T) {
	const (
		cscs    = "/2020-04-22/code-signing-configs"
		missing = "arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefx"
		fn      = "/2020-06-30/functions/golden-csc/code-signing-config"
		loop    = "/2024-08-31/functions/golden-csc/recursion-config"
	)
	pubs := `"AllowedPublishers":{"SigningProfileVersionArns":["arn:aws:signer:us-east-1:000000000000:/signing-profiles/p"]}`
	runGolden(t, append(createFunction("golden-csc"), []step{
		{"create", "POST", cscs, `{"Description":"d",` + pubs + `,"CodeSigningPolicies":{"UntrustedArtifactOnDeployment":"Enforce"}}`},
		{"create-default-policy", "POST", cscs, `{` + pubs + `}`},
		{"create-no-publishers", "POST", cscs, `{}`},
		{"create-bad-policy", "POST", cscs, `{` + pubs + `,"CodeSigningPolicies":{"UntrustedArtifactOnDeployment":"Sometimes"}}`},
		{"create-bad-profile", "POST", cscs, `{"AllowedPublishers":{"SigningProfileVersionArns":["profile"]}}`},
		{"create-no-profiles", "POST", cscs, `{"AllowedPublishers":{"SigningProfileVersionArns":[]}}`},
		{"create-tags", "POST", cscs, `{` + pubs + `,"Tags":{"a":"b"}}`},
		{"get-missing", "GET", cscs + "/" + missing, ""},
		{"get-bad-arn", "GET", cscs + "/csc-1", ""},
		{"update-missing", "PUT", cscs + "/" + missing, `{"Description":"x"}`},
		{"delete-missing", "DELETE", cscs + "/" + missing, ""},
		{"functions-missing", "GET", cscs + "/" + missing + "/functions", ""},
		{"put-missing-csc", "PUT", fn, `{"CodeSigningConfigArn":"` + missing + `"}`},
		{"put-no-arn", "PUT", fn, `{}`},
		{"get-function-none", "GET", fn, ""},
		{"get-function-missing", "GET", "/2020-06-30/functions/golden-csc-nope/code-signing-config", ""},
		{"delete-function-none", "DELETE", fn, ""},
		{"recursion-default", "GET", loop, ""},
		{"recursion-put", "PUT", loop, `{"RecursiveLoop":"Allow"}`},
		{"recursion-get", "GET", loop, ""},
		{"recursion-bad", "PUT", loop, `{"RecursiveLoop":"Sometimes"}`},
		{"recursion-null", "PUT", loop, `{}`},
		{"recursion-missing", "GET", "/2024-08-31/functions/golden-csc-nope/recursion-config", ""},
	}...))
}
