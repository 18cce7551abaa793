package api_test

import "testing"

// TestGoldenLayerPolicy: AddLayerVersionPermission, GetLayerVersionPolicy and
// RemoveLayerVersionPermission, and their rejections.
func TestGoldenLayerPolicy(t *testing.T) {
	const p = "/2018-10-31/layers/golden-layer-policy/versions/1/policy"
	const grant = `{"StatementId":"s1","Action":"lambda:GetLayerVersion","Principal":"*"}`
	runGolden(t, []step{
		{"publish", "POST", "/2018-10-31/layers/golden-layer-policy/versions", publishLayer(nil)},
		{"get-none", "GET", p, ""},
		{"remove-none", "DELETE", p + "/s1", ""},
		{"add", "POST", p, grant},
		{"add-account", "POST", p, `{"StatementId":"acct","Action":"lambda:GetLayerVersion","Principal":"210987654321"}`},
		{"add-org", "POST", p, `{"StatementId":"org","Action":"lambda:GetLayerVersion","Principal":"*","OrganizationId":"o-abcdefghij"}`},
		{"add-taken", "POST", p, grant},
		{"add-bad-action", "POST", p, `{"StatementId":"x","Action":"*","Principal":"*"}`},
		{"add-bad-principal", "POST", p, `{"StatementId":"x","Action":"lambda:GetLayerVersion","Principal":"s3.amazonaws.com"}`},
		{"add-bad-org", "POST", p, `{"StatementId":"x","Action":"lambda:GetLayerVersion","Principal":"*","OrganizationId":"org"}`},
		{"add-empty", "POST", p, `{}`},
		{"add-wrong-revision", "POST", p + "?RevisionId=wrong", `{"StatementId":"x","Action":"lambda:GetLayerVersion","Principal":"*"}`},
		{"add-missing-version", "POST", "/2018-10-31/layers/golden-layer-policy/versions/2/policy", grant},
		{"add-zero-version", "POST", "/2018-10-31/layers/golden-layer-policy/versions/0/policy", grant},
		{"add-bad-json", "POST", p, `{"StatementId":`},
		{"get", "GET", p, ""},
		{"get-missing-layer", "GET", "/2018-10-31/layers/golden-layer-nope/versions/1/policy", ""},
		{"remove-missing", "DELETE", p + "/nope", ""},
		{"remove-wrong-revision", "DELETE", p + "/s1?RevisionId=wrong", ""},
		{"remove", "DELETE", p + "/s1", ""},
		{"get-after-remove", "GET", p, ""},
		{"layer-version-unchanged", "GET", "/2018-10-31/layers/golden-layer-policy/versions/1", ""},
		{"delete-version", "DELETE", "/2018-10-31/layers/golden-layer-policy/versions/1", ""},
		{"get-after-delete", "GET", p, ""},
	})
}
