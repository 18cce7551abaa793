package api_test

import "testing"

// TestGoldenPolicy: AddPermission, GetPolicy, RemovePermission on a function, a version and an
// alias, and their rejections.
func TestGoldenPolicy(t *testing.T) {
	const fn = "/2015-03-31/functions/golden-policy/policy"
	runGolden(t, append(createFunction("golden-policy"), []step{
		{"publish", "POST", "/2015-03-31/functions/golden-policy/versions", `{}`},
		{"alias", "POST", "/2015-03-31/functions/golden-policy/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"alias-dev", "POST", "/2015-03-31/functions/golden-policy/aliases", `{"Name":"dev","FunctionVersion":"1"}`},
		{"get-none", "GET", fn, ""},
		{"remove-none", "DELETE", fn + "/s3", ""},
		{"add", "POST", fn, `{"StatementId":"s3","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com","SourceArn":"arn:aws:s3:::bucket","SourceAccount":"123456789012"}`},
		{"add-account", "POST", fn, `{"StatementId":"acct","Action":"lambda:*","Principal":"210987654321"}`},
		{"add-arn-principal", "POST", fn, `{"StatementId":"role","Action":"*","Principal":"arn:aws:iam::210987654321:role/x","PrincipalOrgID":"o-abc","EventSourceToken":"tok"}`},
		{"add-url-public", "POST", fn, `{"StatementId":"url","Action":"lambda:InvokeFunctionUrl","Principal":"*","FunctionUrlAuthType":"NONE"}`},
		{"add-taken", "POST", fn, `{"StatementId":"s3","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-no-sid", "POST", fn, `{"Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-empty-sid", "POST", fn, `{"StatementId":"","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-no-action", "POST", fn, `{"StatementId":"x","Principal":"s3.amazonaws.com"}`},
		{"add-no-principal", "POST", fn, `{"StatementId":"x","Action":"lambda:InvokeFunction"}`},
		{"add-bad-sid", "POST", fn, `{"StatementId":"a b","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-bad-action", "POST", fn, `{"StatementId":"x","Action":"s3:GetObject","Principal":"s3.amazonaws.com"}`},
		{"add-bad-principal", "POST", fn, `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"nobody"}`},
		{"add-bad-auth-type", "POST", fn, `{"StatementId":"x","Action":"lambda:InvokeFunctionUrl","Principal":"*","FunctionUrlAuthType":"OPEN"}`},
		{"add-bad-source-account", "POST", fn, `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com","SourceAccount":"12"}`},
		{"add-bad-json", "POST", fn, `{"StatementId":`},
		{"add-wrong-type", "POST", fn, `{"StatementId":1}`},
		{"add-stale-revision", "POST", fn, `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com","RevisionId":"stale"}`},
		{"add-latest", "POST", fn + "?Qualifier=$LATEST", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-missing-version", "POST", fn + "?Qualifier=9", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-missing-alias", "POST", fn + "?Qualifier=nope", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-bad-qualifier", "POST", fn + "?Qualifier=a%21b", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-mismatched-qualifier", "POST", "/2015-03-31/functions/golden-policy:1/policy?Qualifier=live", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-missing-function", "POST", "/2015-03-31/functions/golden-policy-nope/policy", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-foreign-account", "POST", "/2015-03-31/functions/arn:aws:lambda:us-east-1:210987654321:function:golden-policy/policy", `{"StatementId":"x","Action":"lambda:InvokeFunction","Principal":"s3.amazonaws.com"}`},
		{"add-version", "POST", fn + "?Qualifier=1", `{"StatementId":"v1","Action":"lambda:InvokeFunction","Principal":"events.amazonaws.com"}`},
		{"add-alias-in-name", "POST", "/2015-03-31/functions/golden-policy:live/policy", `{"StatementId":"live","Action":"lambda:InvokeFunction","Principal":"sns.amazonaws.com"}`},
		{"get", "GET", fn, ""},
		{"get-version", "GET", fn + "?Qualifier=1", ""},
		{"get-alias", "GET", fn + "?Qualifier=live", ""},
		{"get-alias-none", "GET", fn + "?Qualifier=dev", ""},
		{"get-latest", "GET", fn + "?Qualifier=$LATEST", ""},
		{"get-missing-function", "GET", "/2015-03-31/functions/golden-policy-nope/policy", ""},
		{"remove", "DELETE", fn + "/acct", ""},
		{"remove-again", "DELETE", fn + "/acct", ""},
		{"remove-stale", "DELETE", fn + "/s3?RevisionId=stale", ""},
		{"remove-alias-none", "DELETE", fn + "/x?Qualifier=dev", ""},
		{"get-after-remove", "GET", fn, ""},
		{"remove-version-last", "DELETE", fn + "/v1?Qualifier=1", ""},
		{"get-version-empty", "GET", fn + "?Qualifier=1", ""},
		{"remove-s3", "DELETE", fn + "/s3", ""},
		{"remove-role", "DELETE", fn + "/role", ""},
		{"remove-url", "DELETE", fn + "/url", ""},
		{"get-empty", "GET", fn, ""},
	}...))
}
