package control

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// versionStore is the published versions' repository (store.Versions).
type versionStore interface {
	versionReader
	versionLister
	Create(ctx context.Context, v *lambda.Function, n int) (uint64, error)
	Delete(ctx context.Context, name string, n int) (uint64, error)
}

// aliasLister lists a function's aliases (store.Aliases): a version an alias uses stays.
type aliasLister interface {
	List(ctx context.Context, name string) ([]*lambda.Alias, error)
}

// Versions serves PublishVersion and ListVersionsByFunction, and deletes versions for
// DeleteFunction.
type Versions struct {
	resolver
	awaiter
	functions functionStore
	versions  versionStore
	aliases   aliasLister
}

// PublishInput is PublishVersion's request body.
type PublishInput struct {
	CodeSha256  string  `json:"CodeSha256"`
	Description *string `json:"Description"`
	RevisionId  string  `json:"RevisionId"`
}

// VersionList is ListVersionsByFunction's answer.
type VersionList struct {
	Versions   []lambda.FunctionConfiguration `json:"Versions"`
	NextMarker string                         `json:"NextMarker,omitempty"`
}

// Publish snapshots $LATEST of the function t names as its next version, unless nothing
// changed since the newest one (then Lambda answers with that version).
func (s *Versions) Publish(ctx context.Context, t Target, in PublishInput) (*lambda.FunctionConfiguration, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	v, err := s.publish(ctx, f, in)
	if err != nil {
		return nil, err
	}
	return &v.Config, nil
}

func (s *Versions) publish(ctx context.Context, f store.Function, in PublishInput) (*lambda.Function, error) {
	for attempt := 0; ; attempt++ {
		if in.RevisionId != "" && in.RevisionId != f.Config.RevisionId {
			return nil, preconditionFailed()
		}
		if in.CodeSha256 != "" && in.CodeSha256 != f.Config.CodeSha256 {
			return nil, apierr.InvalidParameterValue("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", in.CodeSha256, f.Config.CodeSha256)
		}
		name := f.Config.FunctionName
		if f.LastVersion > 0 {
			last, _, err := s.versions.Get(ctx, name, f.LastVersion)
			if err == nil && sameVersion(last, f.Function) {
				return last, nil
			}
		}
		n := f.LastVersion + 1
		v := *f.Function
		v.Config.Environment = cloneEnv(f.Config.Environment)
		v.Config.Version = strconv.Itoa(n)
		v.Config.FunctionArn = s.account.FunctionARN(name, v.Config.Version)
		v.Config.RevisionId = uuid.NewString()
		v.Config.LastModified = lambda.FormatTime(time.Now())
		v.ReservedConcurrency, v.LastVersion, v.Tags = nil, 0, nil
		set(&v.Config.Description, in.Description)
		// Claim the number on the function first, so two publishers never share one.
		next := *f.Function
		next.LastVersion = n
		next.Config.RevisionId = uuid.NewString() // AWS's $LATEST changes revision with a publish
		rev, err := s.functions.Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = s.functions.Get(ctx, name); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		vrev, err := s.versions.Create(ctx, &v, n)
		if err != nil {
			return nil, err
		}
		s.await(ctx, invoke.Functions, rev)
		s.await(ctx, invoke.Versions, vrev)
		return &v, nil
	}
}

// sameVersion reports whether $LATEST has neither code nor configuration changes since v.
func sameVersion(v, latest *lambda.Function) bool {
	a, b := v.Config, latest.Config
	for _, c := range []*lambda.FunctionConfiguration{&a, &b} {
		c.Version, c.FunctionArn, c.RevisionId, c.LastModified = "", "", "", ""
		c.State, c.LastUpdateStatus = "", ""
	}
	return reflect.DeepEqual(a, b)
}

// List returns a page of the function's versions, $LATEST first. page reads the request's
// paging parameters: it is called once the function is found, so that a missing function is
// what a request with both faults hears of.
func (s *Versions) List(ctx context.Context, t Target, page func() (Page, error)) (*VersionList, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	p, err := page()
	if err != nil {
		return nil, err
	}
	vs, err := s.versions.List(ctx, f.Config.FunctionName)
	if err != nil {
		return nil, err
	}
	all := append([]*lambda.Function{f.Function}, vs...)
	out := &VersionList{Versions: []lambda.FunctionConfiguration{}}
	started := p.Marker == ""
	for _, v := range all {
		if !started {
			started = v.Config.Version == p.Marker
			continue
		}
		if len(out.Versions) == p.MaxItems {
			out.NextMarker = out.Versions[len(out.Versions)-1].Version
			break
		}
		c := v.Config
		if c.Version == lambda.LatestVersion {
			c.FunctionArn = s.account.FunctionARN(c.FunctionName, lambda.LatestVersion)
		}
		c.State, c.LastUpdateStatus = "", ""
		out.Versions = append(out.Versions, c)
	}
	return out, nil
}

// delete removes a published version unless an alias points to it.
func (s *Versions) delete(ctx context.Context, name, qualifier string) error {
	// AWS's order: the function must exist, the qualifier must be a version, and deleting a
	// version that does not exist succeeds (DeleteFunction is idempotent).
	if _, err := s.functions.Get(ctx, name); errors.Is(err, store.ErrNotFound) {
		return s.notFound(name, "")
	}
	n, err := strconv.Atoi(qualifier)
	if err != nil {
		return apierr.InvalidParameterValue("Deletion of aliases is not currently supported.")
	}
	_, _, err = s.versions.Get(ctx, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	aliases, err := s.aliases.List(ctx, name)
	if err != nil {
		return err
	}
	var using []string
	for _, al := range aliases {
		if al.FunctionVersion == qualifier {
			using = append(using, al.AliasArn)
			continue
		}
		if al.RoutingConfig != nil {
			if _, ok := al.RoutingConfig.AdditionalVersionWeights[qualifier]; ok {
				using = append(using, al.AliasArn)
			}
		}
	}
	if len(using) > 0 {
		return apierr.ResourceConflict("Unable to delete version because the following aliases reference it: %v", using)
	}
	rev, err := s.versions.Delete(ctx, name, n)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.notFound(name, qualifier)
		}
		return err
	}
	s.await(ctx, invoke.Versions, rev)
	return nil
}
