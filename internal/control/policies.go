package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Resource-based policies (AddPermission, RemovePermission, GetPolicy).
//
// Flint's principals: every access key is an identity of the account with full rights (Flint
// has no identity policies), and Flint's own triggers (queues, streams, schedules) act for the
// account. What a resource policy can still decide is the one caller outside the account Flint
// meets: anyone, on a function URL whose AuthType is NONE, who is let in (as on AWS) only by a
// statement granting lambda:InvokeFunctionUrl to Principal "*" (add-permission --principal '*'
// --action lambda:InvokeFunctionUrl --function-url-auth-type NONE). Other statements (service
// principals, other accounts) are stored and returned as AWS does.

// policyStore is the resource-based policies' repository (store.Policies).
type policyStore interface {
	Get(ctx context.Context, name, qualifier string) (*lambda.StoredPolicy, uint64, error)
	Put(ctx context.Context, name, qualifier string, p *lambda.StoredPolicy, rev uint64) (uint64, error)
	Delete(ctx context.Context, name, qualifier string) (uint64, error)
}

// Policies serves AddPermission, GetPolicy and RemovePermission. A function URL whose AuthType
// is NONE admits the public by its policy, so every change waits until the invocation view
// holds it.
type Policies struct {
	resolver
	awaiter
	policies policyStore
}

// PermissionInput is AddPermission's request body.
type PermissionInput struct {
	StatementID         *string `json:"StatementId"`
	Action              *string `json:"Action"`
	Principal           *string `json:"Principal"`
	SourceArn           *string `json:"SourceArn"`
	SourceAccount       *string `json:"SourceAccount"`
	EventSourceToken    *string `json:"EventSourceToken"`
	PrincipalOrgID      *string `json:"PrincipalOrgID"`
	FunctionURLAuthType *string `json:"FunctionUrlAuthType"`
	RevisionID          *string `json:"RevisionId"`
}

var (
	statementIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]+$`) })
	actionPattern      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(lambda:[*]|lambda:[a-zA-Z]+|[*])$`) })
	accountPattern     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{12}$`) })
)

// statementIDConstraints are the constraints of AWS's model a statement id fails (its pattern,
// its length of at most 100), each as a ValidationException lists it.
func statementIDConstraints(sid string) []string {
	var parts []string
	if !statementIDPattern().MatchString(sid) {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)", sid))
	}
	if len(sid) < 1 {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'statementId' failed to satisfy constraint: Member must have length greater than or equal to 1", sid))
	}
	if len(sid) > 100 {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'statementId' failed to satisfy constraint: Member must have length less than or equal to 100", sid))
	}
	return parts
}

// maxPolicyBytes is Lambda's limit on a function's policy.
const maxPolicyBytes = 20 << 10

// policyOp is which policy operation resolves its target: each answers a missing function,
// version or alias in its own words.
type policyOp int

const (
	policyAdd policyOp = iota
	policyRemove
	policyGet
)

// aliasName is AWS's pattern for an alias name: a qualifier that could be one is reported as a
// missing alias, any other as a missing function version.
var aliasName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]+$`) })

// target resolves the function t names and the version or alias its qualifier names ("" for
// the function's own policy).
func (s *Policies) target(ctx context.Context, t Target, op policyOp) (name, qualifier string, err error) {
	name, qualifier, err = s.name(t)
	if err != nil {
		return "", "", err
	}
	missing := func(q string) error {
		switch {
		case op == policyGet:
			return apierr.ResourceNotFound("The resource you requested does not exist.")
		case q == "" && op == policyRemove:
			return apierr.ResourceNotFound("No policy found for: %s", s.account.FunctionARN(name, ""))
		case q != "" && !isNumber(q) && aliasName().MatchString(q):
			return apierr.ResourceNotFound("Cannot find alias arn: %s", s.account.FunctionARN(name, q))
		}
		return s.notFound(name, q)
	}
	if _, err := s.functions.Get(ctx, name); errors.Is(err, store.ErrNotFound) {
		return "", "", missing("")
	} else if err != nil {
		return "", "", err
	}
	switch {
	case qualifier == "":
	case qualifier == lambda.LatestVersion:
		return "", "", apierr.InvalidParameterValue("We currently do not support adding policies for $LATEST.")
	case isNumber(qualifier):
		n, _ := strconv.Atoi(qualifier)
		if _, _, err := s.versions.Get(ctx, name, n); errors.Is(err, store.ErrNotFound) {
			return "", "", missing(qualifier)
		} else if err != nil {
			return "", "", err
		}
	default:
		if _, err := s.aliases.Get(ctx, name, qualifier); errors.Is(err, store.ErrNotFound) {
			return "", "", missing(qualifier)
		} else if err != nil {
			return "", "", err
		}
	}
	return name, qualifier, nil
}

// policyPrincipal renders an AddPermission principal as AWS does in the statement.
func policyPrincipal(p string) (any, error) {
	switch {
	case p == "*":
		return "*", nil
	case accountPattern().MatchString(p):
		return map[string]string{"AWS": "arn:aws:iam::" + p + ":root"}, nil
	case strings.HasPrefix(p, "arn:"):
		return map[string]string{"AWS": p}, nil
	case !strings.ContainsAny(p, ": /") && (strings.HasSuffix(p, ".amazonaws.com") || strings.HasSuffix(p, ".amazon.com") || strings.HasSuffix(p, ".amazonaws.com.cn")):
		// A service principal: AWS accepts only its own services' names.
		return map[string]string{"Service": p}, nil
	}
	return nil, apierr.InvalidParameterValue("The provided principal was invalid. Please check the principal and try again.")
}

// Add adds a statement to the policy of the function, version or alias t names, and returns it.
func (s *Policies) Add(ctx context.Context, t Target, in PermissionInput) (*lambda.PolicyStatement, error) {
	for _, req := range []struct {
		name string
		v    *string
	}{{"statementId", in.StatementID}, {"action", in.Action}, {"principal", in.Principal}} {
		if req.v == nil || *req.v == "" {
			return nil, apierr.Validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", req.name)
		}
	}
	if err := validationErrors(statementIDConstraints(*in.StatementID)); err != nil {
		return nil, err
	}
	if !actionPattern().MatchString(*in.Action) {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'action' failed to satisfy constraint: Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])", *in.Action)
	}
	if at := in.FunctionURLAuthType; at != nil && *at != "NONE" && *at != "AWS_IAM" {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'functionUrlAuthType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]", *at)
	}
	if acct := in.SourceAccount; acct != nil && !accountPattern().MatchString(*acct) {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'sourceAccount' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\d{12}$", *acct)
	}
	who, err := policyPrincipal(*in.Principal)
	if err != nil {
		return nil, err
	}
	name, qualifier, err := s.target(ctx, t, policyAdd)
	if err != nil {
		return nil, err
	}
	st := lambda.PolicyStatement{Sid: *in.StatementID, Effect: "Allow", Principal: who, Action: *in.Action,
		Resource: s.account.FunctionARN(name, qualifier)}
	cond := func(op, key string, v *string) {
		if v == nil || *v == "" {
			return
		}
		if st.Condition == nil {
			st.Condition = map[string]map[string]string{}
		}
		if st.Condition[op] == nil {
			st.Condition[op] = map[string]string{}
		}
		st.Condition[op][key] = *v
	}
	cond("ArnLike", "AWS:SourceArn", in.SourceArn)
	cond("StringEquals", "AWS:SourceAccount", in.SourceAccount)
	cond("StringEquals", "lambda:EventSourceToken", in.EventSourceToken)
	cond("StringEquals", "aws:PrincipalOrgID", in.PrincipalOrgID)
	cond("StringEquals", "lambda:FunctionUrlAuthType", in.FunctionURLAuthType)

	rid := ""
	if in.RevisionID != nil {
		rid = *in.RevisionID
	}
	err = s.modify(ctx, name, qualifier, rid, true, addStatement(st))
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// Remove removes statement sid from the policy t names, if revisionID (when set) is the
// policy's revision.
func (s *Policies) Remove(ctx context.Context, t Target, sid, revisionID string) error {
	name, qualifier, err := s.target(ctx, t, policyRemove)
	if err != nil {
		return err
	}
	return s.modify(ctx, name, qualifier, revisionID, false, func(p *lambda.Policy) error {
		i := slices.IndexFunc(p.Statement, func(s lambda.PolicyStatement) bool { return s.Sid == sid })
		if i < 0 {
			return apierr.ResourceNotFound("Statement %s is not found in resource policy.", sid)
		}
		p.Statement = slices.Delete(p.Statement, i, i+1)
		return nil
	})
}

// modify applies change to a copy of the resource policy and stores it under a new revision id
// (deleting a policy left without statements), starting again from a fresh read when another
// request wrote it in between. revisionID, when set, must be the stored one's. A missing policy
// starts empty with create, else is ResourceNotFoundException.
func (s *Policies) modify(ctx context.Context, name, qualifier, revisionID string, create bool, change func(*lambda.Policy) error) error {
	for range 5 {
		cur, rev, err := s.policies.Get(ctx, name, qualifier)
		if errors.Is(err, store.ErrNotFound) {
			if !create {
				return apierr.ResourceNotFound("No policy is associated with the given resource.")
			}
			cur, rev, err = &lambda.StoredPolicy{Policy: lambda.Policy{Version: "2012-10-17", ID: "default"}}, 0, nil
		}
		if err != nil {
			return err
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id")
		}
		next := *cur
		next.Policy.Statement = slices.Clone(cur.Policy.Statement)
		if err := change(&next.Policy); err != nil {
			return err
		}
		next.RevisionID = uuid.NewString()
		var written uint64
		if len(next.Policy.Statement) == 0 {
			written, err = s.policies.Delete(ctx, name, qualifier)
		} else {
			written, err = s.policies.Put(ctx, name, qualifier, &next, rev)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err == nil {
			// A grant or a refusal of the public URL is in force when the caller is answered.
			s.await(ctx, invoke.Policies, written)
		}
		return err
	}
	return apierr.ResourceConflict("The policy was modified concurrently; try again.")
}

// Get returns the policy of the function, version or alias t names.
func (s *Policies) Get(ctx context.Context, t Target) (*lambda.StoredPolicy, error) {
	name, qualifier, err := s.target(ctx, t, policyGet)
	if err != nil {
		return nil, err
	}
	cur, _, err := s.policies.Get(ctx, name, qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.ResourceNotFound("The resource you requested does not exist.")
	}
	return cur, err
}

// addStatement adds st to a policy (a function's or a layer version's): a statement id is used
// once, and the policy stays within maxPolicyBytes.
func addStatement(st lambda.PolicyStatement) func(p *lambda.Policy) error {
	return func(p *lambda.Policy) error {
		if slices.ContainsFunc(p.Statement, func(s lambda.PolicyStatement) bool { return s.Sid == st.Sid }) {
			return apierr.ResourceConflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", st.Sid)
		}
		p.Statement = append(p.Statement, st)
		if b, _ := json.Marshal(p); len(b) > maxPolicyBytes {
			return apierr.PolicyLengthExceeded("The final policy size (%d) is bigger than the limit (%d).", len(b), maxPolicyBytes)
		}
		return nil
	}
}
