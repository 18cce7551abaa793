package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Code signing configurations (CreateCodeSigningConfig … ListFunctionsByCodeSigningConfig, and
// a function's binding to one).
//
// Flint has no AWS Signer: it cannot tell a signed package from an unsigned one. What it keeps
// is what users can observe of the configurations: they are stored, listed, bound to functions
// and refused deletion while in use, as on AWS. A deployment to a function whose configuration
// says Warn goes ahead (AWS's Warn deploys an unverified package too); one whose configuration
// says Enforce is refused with AWS's CodeVerificationFailedException, since no package can pass
// a check Flint cannot make (CreateFunction, UpdateFunctionCode, and UpdateFunctionConfiguration
// with layers, which AWS verifies too).

// signingStore is the code signing configurations' repository (store.CodeSigningConfigs).
type signingStore interface {
	Create(ctx context.Context, c *lambda.CodeSigningConfig) error
	Get(ctx context.Context, id string) (*lambda.CodeSigningConfig, uint64, error)
	Update(ctx context.Context, c *lambda.CodeSigningConfig, rev uint64) error
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]*lambda.CodeSigningConfig, error)
}

// signedFunctions is the functions repository (store.Functions): a function's binding lives on
// its $LATEST record.
type signedFunctions interface {
	functionRecords
	List(ctx context.Context) ([]*lambda.Function, error)
}

// CodeSigning serves the code signing configurations and functions' bindings to them.
type CodeSigning struct {
	resolver
	awaiter
	configs   signingStore
	functions signedFunctions
}

// CodeSigningInput is CreateCodeSigningConfig's and UpdateCodeSigningConfig's request body.
type CodeSigningInput struct {
	AllowedPublishers   *lambda.AllowedPublishers   `json:"AllowedPublishers"`
	CodeSigningPolicies *lambda.CodeSigningPolicies `json:"CodeSigningPolicies"`
	Description         *string                     `json:"Description"`
	Tags                map[string]string           `json:"Tags"`
}

// CodeSigningAnswer is the answer of Create, Get and UpdateCodeSigningConfig.
type CodeSigningAnswer struct {
	CodeSigningConfig *lambda.CodeSigningConfig `json:"CodeSigningConfig"`
}

// CodeSigningList is ListCodeSigningConfigs's answer.
type CodeSigningList struct {
	CodeSigningConfigs []*lambda.CodeSigningConfig `json:"CodeSigningConfigs"`
	NextMarker         string                      `json:"NextMarker,omitempty"`
}

// FunctionCodeSigning is Put and GetFunctionCodeSigningConfig's answer (both fields left out
// for a function without a configuration, as AWS answers).
type FunctionCodeSigning struct {
	CodeSigningConfigArn string `json:"CodeSigningConfigArn,omitempty"`
	FunctionName         string `json:"FunctionName,omitempty"`
}

// SignedFunctionList is ListFunctionsByCodeSigningConfig's answer.
type SignedFunctionList struct {
	FunctionArns []string `json:"FunctionArns"`
	NextMarker   string   `json:"NextMarker,omitempty"`
}

// cscARNModel is AWS's pattern for a code signing configuration's ARN.
const cscARNModel = `arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:code-signing-config:csc-[a-z0-9]{17}`

var (
	cscARNPattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:(?:aws[a-zA-Z-]*)?:lambda:((?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(\d{12}):code-signing-config:(csc-[a-z0-9]{17})$`)
	})
	signingProfileARN = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$`)
	})
)

// cscMissing is AWS's answer for a configuration the configuration operations cannot find.
func cscMissing(arn string) error {
	return apierr.ResourceNotFound("The Lambda code signing configuration %s can not be found.", arn)
}

// id parses a configuration's ARN into its id; "" with no error for a well-formed ARN of another
// region or account, which names no configuration here.
func (s *CodeSigning) id(arn string) (string, error) {
	m := cscARNPattern().FindStringSubmatch(arn)
	if m == nil || len(arn) > 200 {
		return "", apierr.Validation("1 validation error detected: Value '%s' at 'codeSigningConfigArn' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", arn, cscARNModel)
	}
	if m[1] != s.account.Region || m[2] != s.account.ID {
		return "", nil
	}
	return m[3], nil
}

// get reads the configuration arn names; missing is the error for one that is not there.
func (s *CodeSigning) get(ctx context.Context, arn string, missing func(string) error) (*lambda.CodeSigningConfig, uint64, error) {
	id, err := s.id(arn)
	if err != nil {
		return nil, 0, err
	}
	if id == "" {
		return nil, 0, missing(arn)
	}
	c, rev, err := s.configs.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, missing(arn)
	}
	return c, rev, err
}

// checkSigning applies AWS's constraints on a configuration's fields; create says the publishers are
// required.
func checkSigning(in CodeSigningInput, create bool) error {
	var parts []string
	if in.AllowedPublishers == nil && create {
		parts = append(parts, "Value null at 'allowedPublishers' failed to satisfy constraint: Member must not be null")
	}
	if p := in.AllowedPublishers; p != nil {
		switch arns := p.SigningProfileVersionArns; {
		case arns == nil:
			parts = append(parts, "Value null at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: Member must not be null")
		case len(arns) < 1 || len(arns) > 20:
			parts = append(parts, fmt.Sprintf("Value '%s' at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: Member must have length %s",
				lambda.FormatList(arns), map[bool]string{true: "greater than or equal to 1", false: "less than or equal to 20"}[len(arns) < 1]))
		default:
			for _, a := range arns {
				if !signingProfileARN().MatchString(a) {
					parts = append(parts, fmt.Sprintf("Value '%s' at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)]", lambda.FormatList(arns)))
					break
				}
			}
		}
	}
	if p := in.CodeSigningPolicies; p != nil && p.UntrustedArtifactOnDeployment != "" && p.UntrustedArtifactOnDeployment != "Warn" && p.UntrustedArtifactOnDeployment != "Enforce" {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'codeSigningPolicies.untrustedArtifactOnDeployment' failed to satisfy constraint: Member must satisfy enum value set: [Warn, Enforce]", p.UntrustedArtifactOnDeployment))
	}
	if d := in.Description; d != nil && len(*d) > 256 {
		parts = append(parts, fmt.Sprintf("Value '%s' at 'description' failed to satisfy constraint: Member must have length less than or equal to 256", *d))
	}
	return validationErrors(parts)
}

// Create stores a new code signing configuration.
func (s *CodeSigning) Create(ctx context.Context, in CodeSigningInput) (*CodeSigningAnswer, error) {
	if err := checkSigning(in, true); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		return nil, apierr.InvalidParameterValue("Flint tags functions only; a code signing configuration takes no Tags.")
	}
	c := &lambda.CodeSigningConfig{AllowedPublishers: *in.AllowedPublishers,
		CodeSigningPolicies: lambda.CodeSigningPolicies{UntrustedArtifactOnDeployment: "Warn"},
		LastModified:        lambda.FormatTime(time.Now())}
	if p := in.CodeSigningPolicies; p != nil && p.UntrustedArtifactOnDeployment != "" {
		c.CodeSigningPolicies = *p
	}
	set(&c.Description, in.Description)
	for range 5 {
		var b [9]byte
		_, _ = rand.Read(b[:])
		c.CodeSigningConfigId = "csc-" + hex.EncodeToString(b[:])[:17]
		c.CodeSigningConfigArn = "arn:aws:lambda:" + s.account.Region + ":" + s.account.ID + ":code-signing-config:" + c.CodeSigningConfigId
		err := s.configs.Create(ctx, c)
		if errors.Is(err, store.ErrExists) {
			continue // 68 random bits met another's: draw again
		}
		if err != nil {
			return nil, err
		}
		return &CodeSigningAnswer{CodeSigningConfig: c}, nil
	}
	return nil, apierr.ResourceConflict("Could not allocate a code signing configuration id; try again.")
}

// Get returns the configuration arn names.
func (s *CodeSigning) Get(ctx context.Context, arn string) (*CodeSigningAnswer, error) {
	c, _, err := s.get(ctx, arn, cscMissing)
	if err != nil {
		return nil, err
	}
	return &CodeSigningAnswer{CodeSigningConfig: c}, nil
}

// Update sets the fields in gives in the configuration arn names; a request giving none
// is answered with the configuration as it is.
func (s *CodeSigning) Update(ctx context.Context, arn string, in CodeSigningInput) (*CodeSigningAnswer, error) {
	if err := checkSigning(in, false); err != nil {
		return nil, err
	}
	for range 5 {
		cur, rev, err := s.get(ctx, arn, cscMissing)
		if err != nil {
			return nil, err
		}
		if in.AllowedPublishers == nil && in.CodeSigningPolicies == nil && in.Description == nil {
			return &CodeSigningAnswer{CodeSigningConfig: cur}, nil
		}
		next := *cur
		if in.AllowedPublishers != nil {
			next.AllowedPublishers = *in.AllowedPublishers
		}
		if p := in.CodeSigningPolicies; p != nil && p.UntrustedArtifactOnDeployment != "" {
			next.CodeSigningPolicies = *p
		}
		set(&next.Description, in.Description)
		next.LastModified = lambda.FormatTime(time.Now())
		err = s.configs.Update(ctx, &next, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &CodeSigningAnswer{CodeSigningConfig: &next}, nil
	}
	return nil, apierr.ResourceConflict("The code signing configuration was modified concurrently; try again.")
}

// Delete removes the configuration arn names, unless a function uses it.
func (s *CodeSigning) Delete(ctx context.Context, arn string) error {
	c, _, err := s.get(ctx, arn, cscMissing)
	if err != nil {
		return err
	}
	inUse := func() error {
		users, err := s.users(ctx, c.CodeSigningConfigArn)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return apierr.ResourceConflict("The code signing configuration %s cannot be deleted because it is used by %d function(s), for example %s. Remove it from them with DeleteFunctionCodeSigningConfig first.",
				c.CodeSigningConfigArn, len(users), users[0])
		}
		return nil
	}
	if err := inUse(); err != nil {
		return err
	}
	if err := s.configs.Delete(ctx, c.CodeSigningConfigId); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// A Bind that wrote its function between the check and the delete reads the configuration
	// after its write (Bind): it saw it, and then its binding is seen here, or it did not, and
	// undid itself. Seen here, the configuration is put back and the delete refused.
	if err := inUse(); err != nil {
		if rerr := s.configs.Create(ctx, c); rerr != nil && !errors.Is(rerr, store.ErrExists) {
			return fmt.Errorf("restore code signing config %s after a concurrent bind: %w", c.CodeSigningConfigId, rerr)
		}
		return err
	}
	return nil
}

// users are the unqualified ARNs of the functions bound to the configuration arn, by name.
func (s *CodeSigning) users(ctx context.Context, arn string) ([]string, error) {
	all, err := s.functions.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range all {
		if f.CodeSigningConfigArn == arn {
			out = append(out, f.Config.FunctionArn)
		}
	}
	sort.Strings(out)
	return out, nil
}

// List returns a page of the configurations, by id; the marker is the last id of the previous
// page.
func (s *CodeSigning) List(ctx context.Context, p Page) (*CodeSigningList, error) {
	all, err := s.configs.List(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *lambda.CodeSigningConfig) int {
		return strings.Compare(a.CodeSigningConfigId, b.CodeSigningConfigId)
	})
	out := &CodeSigningList{CodeSigningConfigs: []*lambda.CodeSigningConfig{}}
	for _, c := range all {
		if p.Marker != "" && c.CodeSigningConfigId <= p.Marker {
			continue
		}
		if len(out.CodeSigningConfigs) == p.MaxItems {
			out.NextMarker = out.CodeSigningConfigs[len(out.CodeSigningConfigs)-1].CodeSigningConfigId
			break
		}
		out.CodeSigningConfigs = append(out.CodeSigningConfigs, c)
	}
	return out, nil
}

// Functions returns a page of the functions bound to the configuration arn names; the marker
// is the last ARN of the previous page.
func (s *CodeSigning) Functions(ctx context.Context, arn string, p Page) (*SignedFunctionList, error) {
	c, _, err := s.get(ctx, arn, cscMissing)
	if err != nil {
		return nil, err
	}
	users, err := s.users(ctx, c.CodeSigningConfigArn)
	if err != nil {
		return nil, err
	}
	out := &SignedFunctionList{FunctionArns: []string{}}
	for _, u := range users {
		if p.Marker != "" && u <= p.Marker {
			continue
		}
		if len(out.FunctionArns) == p.MaxItems {
			out.NextMarker = out.FunctionArns[len(out.FunctionArns)-1]
			break
		}
		out.FunctionArns = append(out.FunctionArns, u)
	}
	return out, nil
}

// Bind binds the function t names to the configuration arn names (PutFunctionCodeSigningConfig):
// the configuration is looked for first, as AWS does.
func (s *CodeSigning) Bind(ctx context.Context, t Target, arn *string) (*FunctionCodeSigning, error) {
	if arn == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'codeSigningConfigArn' failed to satisfy constraint: Member must not be null")
	}
	c, _, err := s.get(ctx, *arn, func(arn string) error {
		return apierr.CodeSigningConfigNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", arn)
	})
	if err != nil {
		return nil, err
	}
	name, err := s.bind(ctx, t, c.CodeSigningConfigArn)
	if err != nil {
		return nil, err
	}
	// A Delete may have removed the configuration since it was read (Delete's second check).
	if _, _, err := s.configs.Get(ctx, c.CodeSigningConfigId); errors.Is(err, store.ErrNotFound) {
		if uerr := s.unbindIf(ctx, name, c.CodeSigningConfigArn); uerr != nil {
			return nil, uerr
		}
		return nil, apierr.CodeSigningConfigNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", *arn)
	} else if err != nil {
		return nil, err
	}
	return &FunctionCodeSigning{CodeSigningConfigArn: c.CodeSigningConfigArn, FunctionName: name}, nil
}

// Binding returns the configuration the function t names is bound to (none: an empty answer).
func (s *CodeSigning) Binding(ctx context.Context, t Target) (*FunctionCodeSigning, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	if f.CodeSigningConfigArn == "" {
		return &FunctionCodeSigning{}, nil
	}
	return &FunctionCodeSigning{CodeSigningConfigArn: f.CodeSigningConfigArn, FunctionName: f.Config.FunctionName}, nil
}

// Unbind removes the function's binding; a function without one is no error, as on AWS.
func (s *CodeSigning) Unbind(ctx context.Context, t Target) error {
	_, err := s.bind(ctx, t, "")
	return err
}

// bind sets the function's configuration ARN, starting again from a fresh read when another
// request wrote the function in between. Its RevisionId and environments stay: the binding
// takes effect at the next deployment.
func (s *CodeSigning) bind(ctx context.Context, t Target, arn string) (string, error) {
	f, err := s.rewriteFunction(ctx, s.functions, func() (store.Function, error) { return s.latest(ctx, t) },
		func(next *lambda.Function) (bool, error) {
			write := next.CodeSigningConfigArn != arn
			next.CodeSigningConfigArn = arn
			return write, nil
		})
	if err != nil {
		return "", err
	}
	return f.Config.FunctionName, nil
}

// unbindIf removes the function's binding if it is still to arn.
func (s *CodeSigning) unbindIf(ctx context.Context, name, arn string) error {
	_, err := s.rewriteFunction(ctx, s.functions, func() (store.Function, error) { return s.functions.Get(ctx, name) },
		func(next *lambda.Function) (bool, error) {
			if next.CodeSigningConfigArn != arn {
				return false, nil
			}
			next.CodeSigningConfigArn = ""
			return true, nil
		})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// signingGate refuses deployments to functions under an Enforce configuration (Functions).
type signingGate struct {
	configs interface {
		Get(ctx context.Context, id string) (*lambda.CodeSigningConfig, uint64, error)
	}
	account lambda.Account
}

// config reads the configuration arn names; nil for none (a binding whose configuration went
// in a race with its deletion binds nothing).
func (g signingGate) config(ctx context.Context, arn string) (*lambda.CodeSigningConfig, error) {
	if arn == "" || g.configs == nil {
		return nil, nil
	}
	m := cscARNPattern().FindStringSubmatch(arn)
	if m == nil || m[1] != g.account.Region || m[2] != g.account.ID {
		return nil, nil
	}
	c, _, err := g.configs.Get(ctx, m[3])
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// check refuses a deployment of code or layers to a function bound to arn when its policy is
// Enforce: Flint cannot verify a signature, so no package passes.
func (g signingGate) check(ctx context.Context, arn string) error {
	c, err := g.config(ctx, arn)
	if err != nil || c == nil || c.CodeSigningPolicies.UntrustedArtifactOnDeployment != "Enforce" {
		return err
	}
	return apierr.CodeVerificationFailed("The code signature failed one or more of the validation checks for signature mismatch or expiry, and the code signing policy is set to ENFORCE. Lambda blocks the deployment. (Flint verifies no code signatures: under %s, whose policy is Enforce, no package can be deployed; set it to Warn or remove it from the function.)", c.CodeSigningConfigArn)
}

// create checks CreateFunction's CodeSigningConfigArn: a well-formed ARN of a configuration
// that exists, and whose policy lets the package be deployed.
func (g signingGate) create(ctx context.Context, arn string) error {
	if arn == "" {
		return nil
	}
	if !cscARNPattern().MatchString(arn) || len(arn) > 200 {
		return apierr.Validation("1 validation error detected: Value '%s' at 'codeSigningConfigArn' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", arn, cscARNModel)
	}
	c, err := g.config(ctx, arn)
	if err != nil {
		return err
	}
	if c == nil {
		return apierr.CodeSigningConfigNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s.", arn)
	}
	return g.check(ctx, arn)
}
