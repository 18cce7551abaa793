package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/store"
)

// TestLayerPermissions: statements are added, read and removed with AWS's checks; every refusal
// leaves the stored version (and its policy) as it was; the policy goes with its version, and
// GetLayerVersion does not show it.
func TestLayerPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.plane.Layers
	good := zipOf(t, map[string]string{"python/lib.py": "X = 1\n"})
	if _, err := svc.Publish(ctx, "lib", control.LayerInput{}, &layerPackage{st: e.st, zip: good}); err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	perm := func(sid, action, principal string) control.LayerPermissionInput {
		return control.LayerPermissionInput{StatementID: str(sid), Action: str(action), Principal: str(principal)}
	}

	_, err := svc.Policy(ctx, "lib", "1")
	wantErr(t, err, "ResourceNotFoundException", "No policy is associated with the given resource.")

	added, err := svc.AddPermission(ctx, "lib", "1", "", perm("s1", "lambda:GetLayerVersion", "*"))
	if err != nil {
		t.Fatal(err)
	}
	const res = "arn:aws:lambda:us-east-1:123456789012:layer:lib:1"
	if want := `{"Sid":"s1","Effect":"Allow","Principal":"*","Action":"lambda:GetLayerVersion","Resource":"` + res + `"}`; added.Statement != want || added.RevisionID == "" {
		t.Fatalf("added %+v, want statement %s", added, want)
	}
	org, err := svc.AddPermission(ctx, "lib", "1", added.RevisionID, control.LayerPermissionInput{StatementID: str("org"),
		Action: str("lambda:GetLayerVersion"), Principal: str("*"), OrganizationID: str("o-abcdefghij")})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := svc.AddPermission(ctx, "lib", "1", "", perm("acct", "lambda:GetLayerVersion", "210987654321"))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.Unmarshal([]byte(org.Statement), &st)
	if c, _ := json.Marshal(st["Condition"]); string(c) != `{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}` {
		t.Errorf("organization statement %s", org.Statement)
	}
	json.Unmarshal([]byte(acct.Statement), &st)
	if p, _ := json.Marshal(st["Principal"]); string(p) != `{"AWS":"arn:aws:iam::210987654321:root"}` {
		t.Errorf("account statement %s", acct.Statement)
	}

	stored := func() string {
		t.Helper()
		l, err := e.st.Layers().Get(ctx, "lib", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(l)
		return string(b)
	}
	before := stored()
	for _, tt := range []struct {
		name, layer, version, rev string
		in                        control.LayerPermissionInput
		code, msg                 string
	}{
		{"action", "lib", "1", "", perm("s2", "*", "*"), "ValidationException",
			"1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion"},
		{"principal", "lib", "1", "", perm("s2", "lambda:GetLayerVersion", "lambda.amazonaws.com"), "ValidationException", "at 'principal'"},
		{"statement id", "lib", "1", "", perm("s 2", "lambda:GetLayerVersion", "*"), "ValidationException", "at 'statementId'"},
		{"two at once", "lib", "1", "", perm("s 2", "*", "*"), "ValidationException", "2 validation errors detected"},
		{"long statement id", "lib", "1", "", perm(strings.Repeat("a", 101), "lambda:GetLayerVersion", "*"), "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("a", 101) + "' at 'statementId' failed to satisfy constraint: Member must have length less than or equal to 100"},
		{"organization", "lib", "1", "", control.LayerPermissionInput{StatementID: str("s2"), Action: str("lambda:GetLayerVersion"),
			Principal: str("*"), OrganizationID: str("org-1")}, "ValidationException", "at 'organizationId'"},
		{"no principal", "lib", "1", "", control.LayerPermissionInput{StatementID: str("s2"), Action: str("lambda:GetLayerVersion")},
			"ValidationException", "Value null at 'principal'"},
		{"duplicate", "lib", "1", "", perm("s1", "lambda:GetLayerVersion", "*"), "ResourceConflictException",
			"The statement id (s1) provided already exists. Please provide a new statement id, or remove the existing statement."},
		{"revision", "lib", "1", "wrong", perm("s2", "lambda:GetLayerVersion", "*"), "PreconditionFailedException", "GetLayerPolicy"},
		{"missing version", "lib", "2", "", perm("s2", "lambda:GetLayerVersion", "*"), "ResourceNotFoundException",
			"Layer version arn:aws:lambda:us-east-1:123456789012:layer:lib:2 does not exist."},
		{"missing layer", "nope", "1", "", perm("s2", "lambda:GetLayerVersion", "*"), "ResourceNotFoundException",
			"Layer version arn:aws:lambda:us-east-1:123456789012:layer:nope:1 does not exist."},
		{"version zero", "lib", "0", "", perm("s2", "lambda:GetLayerVersion", "*"), "InvalidParameterValueException", "Layer Version Cannot be less than 1"},
		{"bad layer name", "a!b", "1", "", perm("s2", "lambda:GetLayerVersion", "*"), "ValidationException", "at 'layerName'"},
	} {
		t.Run("add "+tt.name, func(t *testing.T) {
			_, err := svc.AddPermission(ctx, tt.layer, tt.version, tt.rev, tt.in)
			wantErr(t, err, tt.code, tt.msg)
			if got := stored(); got != before {
				t.Fatalf("a refused add changed the version:\n%s\nwas\n%s", got, before)
			}
		})
	}
	for _, tt := range []struct{ name, layer, version, sid, rev, code, msg string }{
		{"missing statement", "lib", "1", "doesnotexist", "", "ResourceNotFoundException", "Statement doesnotexist is not found in resource policy."},
		{"revision", "lib", "1", "s1", "wrong", "PreconditionFailedException", "GetLayerPolicy"},
		{"missing version", "lib", "2", "s1", "", "ResourceNotFoundException", "layer:lib:2 does not exist."},
	} {
		t.Run("remove "+tt.name, func(t *testing.T) {
			wantErr(t, svc.RemovePermission(ctx, tt.layer, tt.version, tt.sid, tt.rev), tt.code, tt.msg)
			if got := stored(); got != before {
				t.Fatalf("a refused remove changed the version:\n%s\nwas\n%s", got, before)
			}
		})
	}

	p, err := svc.Policy(ctx, "lib", "1")
	if err != nil || p.RevisionID != acct.RevisionID {
		t.Fatalf("policy %+v, %v; want revision %s", p, err, acct.RevisionID)
	}
	if l, err := svc.Get(ctx, "lib", "1"); err != nil || l.Version.Version != 1 {
		t.Fatalf("GetLayerVersion with a policy: %+v, %v", l, err)
	}
	// Removing every statement removes the policy.
	for _, sid := range []string{"s1", "org", "acct"} {
		cur, _ := svc.Policy(ctx, "lib", "1")
		if err := svc.RemovePermission(ctx, "lib", "1", sid, cur.RevisionID); err != nil {
			t.Fatalf("remove %s: %v", sid, err)
		}
	}
	_, err = svc.Policy(ctx, "lib", "1")
	wantErr(t, err, "ResourceNotFoundException", "No policy is associated with the given resource.")

	// The policy goes with its version: a deleted version's policy is not found.
	if _, err := svc.AddPermission(ctx, "lib", "1", "", perm("s1", "lambda:GetLayerVersion", "*")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, "lib", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Layers().Get(ctx, "lib", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted version still stored: %v", err)
	}
	_, err = svc.Policy(ctx, "lib", "1")
	wantErr(t, err, "ResourceNotFoundException", "layer:lib:1 does not exist.")
}
