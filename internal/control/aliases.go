package control

import (
	"context"
	"errors"
	"maps"
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

// aliasStore is the aliases repository (store.Aliases).
type aliasStore interface {
	aliasReader
	Create(ctx context.Context, name string, a *lambda.Alias) (uint64, error)
	Update(ctx context.Context, name string, a *lambda.Alias, rev uint64) (uint64, error)
	Delete(ctx context.Context, name, alias string) (uint64, error)
	List(ctx context.Context, name string) ([]*lambda.Alias, error)
}

// Aliases serves CreateAlias, GetAlias, UpdateAlias, DeleteAlias and ListAliases.
type Aliases struct {
	resolver
	awaiter
	aliases aliasStore
	// provisioned holds the aliases' provisioned-concurrency configs: deleting an alias
	// deletes its config, as on AWS.
	provisioned provisionedStore
}

// AliasInput is CreateAlias's and UpdateAlias's request body.
type AliasInput struct {
	Name            string                     `json:"Name"`
	FunctionVersion *string                    `json:"FunctionVersion"`
	Description     *string                    `json:"Description"`
	RoutingConfig   *lambda.AliasRoutingConfig `json:"RoutingConfig"`
	RevisionId      string                     `json:"RevisionId"`
}

// AliasList is ListAliases's answer.
type AliasList struct {
	Aliases    []lambda.Alias `json:"Aliases"`
	NextMarker string         `json:"NextMarker,omitempty"`
}

var aliasPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`) })

func (s *Aliases) notFound(name, alias string) *apierr.Error {
	return apierr.ResourceNotFound("Alias not found: %s", s.account.FunctionARN(name, alias))
}

// weightsString renders AdditionalVersionWeights as AWS's messages quote it (a Java map:
// {2=0.5}).
func weightsString(w map[string]float64) string {
	keys := slices.Sorted(maps.Keys(w))
	parts := make([]string, len(keys))
	for i, k := range keys {
		f := strconv.FormatFloat(w[k], 'f', -1, 64)
		if !strings.ContainsAny(f, ".eE") {
			f += ".0"
		}
		parts[i] = k + "=" + f
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// checkRoutingModel applies the service model's constraints on a routing configuration, which
// AWS checks before anything else: version keys are numbers, weights between 0 and 1.
func checkRoutingModel(rc *lambda.AliasRoutingConfig) error {
	if rc == nil {
		return nil
	}
	w := rc.AdditionalVersionWeights
	for v := range w {
		if len(v) < 1 || len(v) > 1024 || !isNumber(v) || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
			return apierr.Validation("1 validation error detected: Value '%s' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]", weightsString(w))
		}
	}
	for _, x := range w {
		if x < 0 || x > 1 {
			return apierr.Validation("1 validation error detected: Value '%s' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]", weightsString(w))
		}
	}
	return nil
}

// check validates an alias against the function's versions.
func (s *Aliases) check(ctx context.Context, name string, al *lambda.Alias) error {
	if !aliasPattern().MatchString(al.Name) || isNumber(al.Name) || al.Name == lambda.LatestVersion {
		return apierr.Validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)", al.Name)
	}
	if err := lambda.ValidateDescription(al.Description); err != nil {
		return err
	}
	exists := func(v string) error {
		if v == lambda.LatestVersion {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return apierr.Validation("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)", v)
		}
		if _, _, err := s.versions.Get(ctx, name, n); errors.Is(err, store.ErrNotFound) {
			return apierr.ResourceNotFound("Function not found: %s", s.account.FunctionARN(name, v))
		} else if err != nil {
			return err
		}
		return nil
	}
	if err := exists(al.FunctionVersion); err != nil {
		return err
	}
	if rc := al.RoutingConfig; rc != nil && len(rc.AdditionalVersionWeights) > 0 {
		if len(rc.AdditionalVersionWeights) > 1 {
			return apierr.InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1")
		}
		if al.FunctionVersion == lambda.LatestVersion {
			return apierr.InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
		}
		if err := checkRoutingModel(rc); err != nil {
			return err
		}
		for v := range rc.AdditionalVersionWeights {
			if v == al.FunctionVersion {
				return apierr.InvalidParameterValue("Invalid function version %s. Function version %s is already included in routing configuration.", v, v)
			}
			if v == lambda.LatestVersion {
				return apierr.InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
			}
			if err := exists(v); err != nil {
				return err
			}
		}
	} else {
		al.RoutingConfig = nil
	}
	return nil
}

// Create stores a new alias of the function t names.
func (s *Aliases) Create(ctx context.Context, t Target, in AliasInput) (*lambda.Alias, error) {
	if err := checkRoutingModel(in.RoutingConfig); err != nil {
		return nil, err
	}
	f, err := s.latest(ctx, t)
	var nf *apierr.Error
	if errors.As(err, &nf) && nf.Code == "ResourceNotFoundException" && in.FunctionVersion != nil {
		// AWS names the version the alias was to point to.
		if name, _, perr := s.name(t); perr == nil {
			return nil, apierr.ResourceNotFound("Function not found: %s", s.account.FunctionARN(name, *in.FunctionVersion))
		}
	}
	if err != nil {
		return nil, err
	}
	name := f.Config.FunctionName
	if in.FunctionVersion == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null")
	}
	al := &lambda.Alias{Name: in.Name, FunctionVersion: *in.FunctionVersion, RoutingConfig: in.RoutingConfig,
		AliasArn: s.account.FunctionARN(name, in.Name), RevisionId: uuid.NewString()}
	set(&al.Description, in.Description)
	if err := s.check(ctx, name, al); err != nil {
		return nil, err
	}
	rev, err := s.aliases.Create(ctx, name, al)
	if errors.Is(err, store.ErrExists) {
		return nil, apierr.ResourceConflict("Alias already exists: %s", al.AliasArn)
	}
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.Aliases, rev)
	return al, nil
}

// Get returns the alias named alias of the function t names.
func (s *Aliases) Get(ctx context.Context, t Target, alias string) (*lambda.Alias, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	al, err := s.aliases.Get(ctx, f.Config.FunctionName, alias)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.ResourceNotFound("Cannot find alias arn: %s", s.account.FunctionARN(f.Config.FunctionName, alias))
	}
	if err != nil {
		return nil, err
	}
	return al.Alias, nil
}

// Update changes an alias, if in.RevisionId (when given) is still its revision.
func (s *Aliases) Update(ctx context.Context, t Target, alias string, in AliasInput) (*lambda.Alias, error) {
	if err := checkRoutingModel(in.RoutingConfig); err != nil {
		return nil, err
	}
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	name := f.Config.FunctionName
	for attempt := 0; ; attempt++ {
		cur, err := s.aliases.Get(ctx, name, alias)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.notFound(name, alias)
		}
		if err != nil {
			return nil, err
		}
		if in.RevisionId != "" && in.RevisionId != cur.RevisionId {
			return nil, apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
		}
		next := *cur.Alias
		set(&next.FunctionVersion, in.FunctionVersion)
		set(&next.Description, in.Description)
		if in.RoutingConfig != nil {
			next.RoutingConfig = in.RoutingConfig
		}
		next.RevisionId = uuid.NewString()
		if err := s.check(ctx, name, &next); err != nil {
			return nil, err
		}
		rev, err := s.aliases.Update(ctx, name, &next, cur.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.await(ctx, invoke.Aliases, rev)
		return &next, nil
	}
}

// Delete removes an alias; deleting one that does not exist succeeds, as on AWS.
func (s *Aliases) Delete(ctx context.Context, t Target, alias string) error {
	f, err := s.latest(ctx, t)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	rev, err := s.aliases.Delete(ctx, name, alias)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.await(ctx, invoke.Aliases, rev)
	if s.provisioned != nil {
		prev, err := s.provisioned.Delete(ctx, name, alias)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			s.await(ctx, invoke.Provisioned, prev)
		}
	}
	return nil
}

// List returns a page of the function's aliases by name, only those of version when it is set.
func (s *Aliases) List(ctx context.Context, t Target, version string, p Page) (*AliasList, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	all, err := s.aliases.List(ctx, f.Config.FunctionName)
	if err != nil {
		return nil, err
	}
	out := &AliasList{Aliases: []lambda.Alias{}}
	for _, al := range all {
		if (p.Marker != "" && al.Name <= p.Marker) || (version != "" && al.FunctionVersion != version) {
			continue
		}
		if len(out.Aliases) == p.MaxItems {
			out.NextMarker = out.Aliases[len(out.Aliases)-1].Name
			break
		}
		out.Aliases = append(out.Aliases, *al)
	}
	return out, nil
}
