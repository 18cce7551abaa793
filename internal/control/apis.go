package control

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/apigw"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/store"
)

// apiStore is the APIs repository (store.APIs).
type apiStore interface {
	Get(ctx context.Context, name string) (*apigw.API, uint64, error)
	Create(ctx context.Context, a *apigw.API) (uint64, error)
	Update(ctx context.Context, a *apigw.API, rev uint64) (uint64, error)
	Delete(ctx context.Context, name string) (uint64, error)
	List(ctx context.Context) ([]*apigw.API, error)
}

// APIs serves Flint's management API of API Gateway APIs (/flint/v1/apis): HTTP routes on
// Flint's endpoint that invoke functions with API Gateway's proxy payloads. An API is put whole
// (created, or replaced with its apiId kept) and read and deleted by name; requests to it are
// the data plane (api, with the route tables invoke keeps in memory).
type APIs struct {
	resolver
	awaiter
	apis apiStore
}

// APIInput is PUT /flint/v1/apis/{name}'s body.
type APIInput struct {
	Protocol       string            `json:"protocol"`
	Stage          *string           `json:"stage"`
	StageVariables map[string]string `json:"stageVariables"`
	Routes         []apigw.Route     `json:"routes"`
	Tags           map[string]string `json:"tags"`
}

// Limits of an API, API Gateway's where it has them.
const (
	maxAPIRoutes = 300
	maxAPITags   = 50
)

var (
	apiName       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`) })
	apiStage      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`) })
	stageVarName  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`) })
	stageVarValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9\-._~:/?#&=,]{0,512}$`) })
)

// newAPIID makes an apiId: 10 lowercase letters and digits, as API Gateway's.
func newAPIID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// validate checks everything of in that needs no store and returns the API it describes.
func (in *APIInput) validate(name string) (*apigw.API, error) {
	if !apiName().MatchString(name) {
		return nil, apierr.Validation("Invalid API name '%s': it must be 1 to 128 letters, digits, '-' or '_'.", name)
	}
	a := &apigw.API{Name: name, Protocol: in.Protocol, StageVariables: in.StageVariables, Tags: in.Tags}
	switch in.Protocol {
	case apigw.ProtocolHTTP:
		a.Stage = apigw.DefaultStage
	case apigw.ProtocolREST:
		a.Stage = apigw.DefaultRESTStage
	default:
		return nil, apierr.Validation("Invalid protocol '%s': it must be HTTP or REST.", in.Protocol)
	}
	if in.Stage != nil {
		a.Stage = *in.Stage
	}
	if !apiStage().MatchString(a.Stage) && (a.Stage != apigw.DefaultStage || in.Protocol != apigw.ProtocolHTTP) {
		return nil, apierr.Validation("Invalid stage '%s': it must be 1 to 128 letters, digits, '-' or '_' (or $default for an HTTP API).", a.Stage)
	}
	for k, v := range in.StageVariables {
		if !stageVarName().MatchString(k) {
			return nil, apierr.Validation("Invalid stage variable name '%s': it must be 1 to 64 letters, digits or '_'.", k)
		}
		if !stageVarValue().MatchString(v) {
			return nil, apierr.Validation("Invalid value of stage variable '%s': it may have up to 512 letters, digits and the characters - . _ ~ : / ? # & = ,", k)
		}
	}
	if a.StageVariables == nil {
		a.StageVariables = map[string]string{}
	}
	if len(in.Tags) > maxAPITags {
		return nil, apierr.Validation("An API may have at most %d tags; %d given.", maxAPITags, len(in.Tags))
	}
	for k, v := range in.Tags {
		if len(k) == 0 || len(k) > 128 || len(v) > 256 {
			return nil, apierr.Validation("Invalid tag '%s': keys are 1 to 128 characters, values at most 256.", k)
		}
	}
	if a.Tags == nil {
		a.Tags = map[string]string{}
	}
	if len(in.Routes) > maxAPIRoutes {
		return nil, apierr.Validation("An API may have at most %d routes; %d given.", maxAPIRoutes, len(in.Routes))
	}
	seen := map[string]bool{}
	a.Routes = make([]apigw.Route, 0, len(in.Routes))
	for i, r := range in.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		r.Method = strings.ToUpper(r.Method) // SAM's templates write methods in either case
		if !apigw.ValidMethod(r.Method) {
			return nil, apierr.Validation("Invalid method '%s' at %s: it must be one of %v.", r.Method, where, apigw.Methods)
		}
		if err := apigw.CheckPath(in.Protocol, r.Path); err != nil {
			return nil, apierr.Validation("Invalid path at %s: %v.", where, err)
		}
		key := r.Method + " " + apigw.Shape(r.Path)
		if r.Path == apigw.DefaultRoute {
			key = apigw.DefaultRoute
		}
		if seen[key] {
			return nil, apierr.Validation("Duplicate route at %s: %s %s is already routed.", where, r.Method, r.Path)
		}
		seen[key] = true
		switch {
		case r.PayloadFormatVersion == "" && in.Protocol == apigw.ProtocolHTTP:
			r.PayloadFormatVersion = "2.0"
		case r.PayloadFormatVersion == "" || r.PayloadFormatVersion == "1.0":
			r.PayloadFormatVersion = "1.0"
		case r.PayloadFormatVersion == "2.0" && in.Protocol == apigw.ProtocolHTTP:
		default:
			return nil, apierr.Validation("Invalid payloadFormatVersion '%s' at %s: an HTTP API takes 1.0 or 2.0, a REST API 1.0.", r.PayloadFormatVersion, where)
		}
		if max := apigw.MaxTimeout(in.Protocol); r.TimeoutInMillis != 0 && (r.TimeoutInMillis < 50 || r.TimeoutInMillis > max) {
			return nil, apierr.Validation("Invalid timeoutInMillis %d at %s: it must be between 50 and %d.", r.TimeoutInMillis, where, max)
		}
		if r.Function == "" {
			return nil, apierr.Validation("Missing function at %s.", where)
		}
		a.Routes = append(a.Routes, r)
	}
	return a, nil
}

// resolve checks that every route's function (and its alias or version) exists, and keeps its
// bare name and qualifier.
func (s *APIs) resolve(ctx context.Context, a *apigw.API) error {
	for i := range a.Routes {
		r := &a.Routes[i]
		t := Target{Op: "Invoke", Name: r.Function, Qualifier: r.Qualifier}
		if _, err := s.qualified(ctx, t); err != nil {
			return err
		}
		name, q, err := s.name(t)
		if err != nil {
			return err
		}
		r.Function, r.Qualifier = name, q
	}
	return nil
}

// Put creates the API called name, or wholly replaces it keeping its apiId. It changes nothing
// unless the whole request is valid.
func (s *APIs) Put(ctx context.Context, name string, in APIInput) (*apigw.API, error) {
	a, err := in.validate(name)
	if err != nil {
		return nil, err
	}
	if err := s.resolve(ctx, a); err != nil {
		return nil, err
	}
	// Two writers of one name: the loser of a create or an update reads again and retries.
	for attempt := 0; ; attempt++ {
		old, rev, err := s.apis.Get(ctx, name)
		var wrote uint64
		switch {
		case errors.Is(err, store.ErrNotFound):
			a.APIID = newAPIID()
			wrote, err = s.apis.Create(ctx, a)
		case err != nil:
			return nil, err
		default:
			a.APIID = old.APIID
			wrote, err = s.apis.Update(ctx, a, rev)
		}
		if (errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict)) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.await(ctx, invoke.APIs, wrote)
		return a, nil
	}
}

func apiNotFound(name string) error {
	return apierr.ResourceNotFound("API not found: %s", name)
}

// Get returns the API called name.
func (s *APIs) Get(ctx context.Context, name string) (*apigw.API, error) {
	a, _, err := s.apis.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiNotFound(name)
	}
	return a, err
}

// List returns every API, by name.
func (s *APIs) List(ctx context.Context) ([]*apigw.API, error) {
	return s.apis.List(ctx)
}

// Delete removes the API called name; its routes stop answering before Delete returns.
func (s *APIs) Delete(ctx context.Context, name string) error {
	rev, err := s.apis.Delete(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return apiNotFound(name)
	}
	if err != nil {
		return err
	}
	s.await(ctx, invoke.APIs, rev)
	return nil
}
