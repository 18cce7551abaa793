package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Layer version permissions (AddLayerVersionPermission, GetLayerVersionPolicy,
// RemoveLayerVersionPermission). A layer version's policy is kept in the version's own record:
// it goes when the version is deleted, and GetLayerVersion and ListLayerVersions do not show it.
// Flint has one account, whose keys may use every layer: a policy decides nothing here, and is
// stored and answered as AWS does for the tools that manage it.

// LayerPermissionInput is AddLayerVersionPermission's request body (RevisionId is in the query).
type LayerPermissionInput struct {
	StatementID    *string `json:"StatementId"`
	Action         *string `json:"Action"`
	Principal      *string `json:"Principal"`
	OrganizationID *string `json:"OrganizationId"`
}

// LayerPermission is AddLayerVersionPermission's answer: the statement added, as a JSON string.
type LayerPermission struct {
	Statement  string `json:"Statement"`
	RevisionID string `json:"RevisionId"`
}

// LayerPolicy is GetLayerVersionPolicy's answer: the policy as a JSON string.
type LayerPolicy struct {
	Policy     string `json:"Policy"`
	RevisionID string `json:"RevisionId"`
}

var (
	layerPrincipalPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root)$`) })
	organizationPattern   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^o-[a-z0-9]{10,32}$`) })
)

// layerVersionMissing is AWS's answer for a layer version the permission operations cannot find.
func (s *Layers) layerVersionMissing(name string, n int) error {
	return apierr.ResourceNotFound("Layer version %s:%d does not exist.", s.arn(name), n)
}

// policyTarget parses the layer and version a permission operation names.
func (s *Layers) policyTarget(layer, version string) (string, int, error) {
	name, err := s.name(layer)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(version)
	if err != nil {
		return "", 0, apierr.Validation("1 validation error detected: Value '%s' at 'versionNumber' failed to satisfy constraint: Member must be a positive number", version)
	}
	if n < 1 {
		return "", 0, apierr.InvalidParameterValue("Layer Version Cannot be less than 1")
	}
	return name, n, nil
}

// AddPermission adds a statement to the policy of version of layer and returns it.
func (s *Layers) AddPermission(ctx context.Context, layer, version, revisionID string, in LayerPermissionInput) (*LayerPermission, error) {
	name, n, err := s.policyTarget(layer, version)
	if err != nil {
		return nil, err
	}
	// AWS checks the model's constraints all at once and lists every one that fails.
	var parts []string
	for _, req := range []struct {
		name string
		v    *string
	}{{"statementId", in.StatementID}, {"action", in.Action}, {"principal", in.Principal}} {
		if req.v == nil {
			parts = append(parts, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", req.name))
		}
	}
	if v := in.StatementID; v != nil {
		parts = append(parts, statementIDConstraints(*v)...)
	}
	if v := in.Action; v != nil && *v != "lambda:GetLayerVersion" {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion", *v))
	}
	if v := in.Principal; v != nil && !layerPrincipalPattern().MatchString(*v) {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'principal' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root", *v))
	}
	if v := in.OrganizationID; v != nil && !organizationPattern().MatchString(*v) {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'organizationId' failed to satisfy constraint: Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}", *v))
	}
	if err := validationErrors(parts); err != nil {
		return nil, err
	}
	var who any = "*"
	switch p := *in.Principal; {
	case accountPattern().MatchString(p):
		who = map[string]string{"AWS": "arn:aws:iam::" + p + ":root"}
	case p != "*":
		who = map[string]string{"AWS": p}
	}
	st := lambda.PolicyStatement{Sid: *in.StatementID, Effect: "Allow", Principal: who, Action: *in.Action,
		Resource: s.arn(name) + ":" + strconv.Itoa(n)}
	if in.OrganizationID != nil {
		st.Condition = map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": *in.OrganizationID}}
	}
	p, err := s.modifyPolicy(ctx, name, n, revisionID, addStatement(st))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return &LayerPermission{Statement: string(b), RevisionID: p.RevisionID}, nil
}

// RemovePermission removes statement sid from the policy of version of layer.
func (s *Layers) RemovePermission(ctx context.Context, layer, version, sid, revisionID string) error {
	name, n, err := s.policyTarget(layer, version)
	if err != nil {
		return err
	}
	_, err = s.modifyPolicy(ctx, name, n, revisionID, func(p *lambda.Policy) error {
		i := slices.IndexFunc(p.Statement, func(s lambda.PolicyStatement) bool { return s.Sid == sid })
		if i < 0 {
			return apierr.ResourceNotFound("Statement %s is not found in resource policy.", sid)
		}
		p.Statement = slices.Delete(p.Statement, i, i+1)
		return nil
	})
	return err
}

// Policy returns the policy of version of layer.
func (s *Layers) Policy(ctx context.Context, layer, version string) (*LayerPolicy, error) {
	name, n, err := s.policyTarget(layer, version)
	if err != nil {
		return nil, err
	}
	l, err := s.layers.Get(ctx, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.layerVersionMissing(name, n)
	}
	if err != nil {
		return nil, err
	}
	if l.Policy == nil {
		return nil, noLayerPolicy()
	}
	b, err := json.Marshal(l.Policy.Policy)
	if err != nil {
		return nil, err
	}
	return &LayerPolicy{Policy: string(b), RevisionID: l.Policy.RevisionID}, nil
}

func noLayerPolicy() error {
	return apierr.ResourceNotFound("No policy is associated with the given resource.")
}

// modifyPolicy applies change to a copy of the version's policy (an empty one if it has none)
// and stores the version's record with it under a new revision id, starting again from a fresh
// read when another request wrote the record in between. revisionID, when set, must be the
// policy's. A policy left without statements is removed. It returns the policy stored.
func (s *Layers) modifyPolicy(ctx context.Context, name string, n int, revisionID string, change func(*lambda.Policy) error) (*lambda.StoredPolicy, error) {
	for range 5 {
		l, rev, err := s.layers.GetRevision(ctx, name, n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.layerVersionMissing(name, n)
		}
		if err != nil {
			return nil, err
		}
		cur := lambda.StoredPolicy{Policy: lambda.Policy{Version: "2012-10-17", ID: "default"}}
		if l.Policy != nil {
			cur = *l.Policy
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return nil, apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id")
		}
		next := cur
		next.Policy.Statement = slices.Clone(cur.Policy.Statement)
		if err := change(&next.Policy); err != nil {
			return nil, err
		}
		next.RevisionID = uuid.NewString()
		rec := *l
		rec.Policy = &next
		if len(next.Policy.Statement) == 0 {
			rec.Policy = nil
		}
		err = s.layers.Update(ctx, name, &rec, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &next, nil
	}
	return nil, apierr.ResourceConflict("The policy was modified concurrently; try again.")
}
