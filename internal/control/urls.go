package control

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// urlStore is the function URLs repository (store.URLs).
type urlStore interface {
	Create(ctx context.Context, u *lambda.FunctionURL) (uint64, error)
	Update(ctx context.Context, u *lambda.FunctionURL) (uint64, error)
	Delete(ctx context.Context, id string) (uint64, error)
	List(ctx context.Context, name string) ([]*lambda.FunctionURL, error)
}

// URLs serves CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
// DeleteFunctionUrlConfig and ListFunctionUrlConfigs. A function has at most one URL per
// qualifier ($LATEST or an alias); the URL's address is its random id, which api renders as the
// client reaches the server (FunctionUrl). Requests to the URLs are the data plane (api, invoke).
type URLs struct {
	resolver
	awaiter
	urls urlStore
}

// URLInput is CreateFunctionUrlConfig's and UpdateFunctionUrlConfig's request body.
type URLInput struct {
	AuthType   *string      `json:"AuthType"`
	Cors       *lambda.Cors `json:"Cors"`
	InvokeMode *string      `json:"InvokeMode"`
}

// newURLID makes a URL's id: 32 lowercase letters and digits, a DNS label.
func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (in *URLInput) validate(create bool) error {
	if in.AuthType == nil {
		if create {
			return apierr.Validation("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
		}
	} else if *in.AuthType != "NONE" && *in.AuthType != "AWS_IAM" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]", *in.AuthType)
	}
	if in.InvokeMode != nil && *in.InvokeMode != "BUFFERED" && *in.InvokeMode != "RESPONSE_STREAM" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]", *in.InvokeMode)
	}
	if c := in.Cors; c != nil {
		if c.MaxAge != nil && (*c.MaxAge < 0 || *c.MaxAge > 86400) {
			return apierr.Validation("1 validation error detected: Value '%d' at 'cors.maxAge' failed to satisfy constraint: Member must have value between 0 and 86400", *c.MaxAge)
		}
		if len(c.AllowMethods) > 6 || len(c.AllowOrigins) > 100 || len(c.AllowHeaders) > 100 {
			return apierr.Validation("1 validation error detected: cors lists exceed their limits (AllowMethods 6, AllowOrigins 100, AllowHeaders 100)")
		}
	}
	return nil
}

// urlQualifier is AWS's model for a URL operation's Qualifier: an alias name ($LATEST and
// versions are refused before anything else is looked at).
var urlQualifier = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-zA-Z_-]+$`) })

// AWS's 404 messages of the URL operations when the function or alias is missing: the writes
// say the function does not exist, the reads that the resource does not.
const (
	urlFunctionMissing = "Function does not exist"
	urlResourceMissing = "The resource you requested does not exist."
)

// target resolves the function and the qualifier of a URL operation: "" (the unqualified
// function) or an alias, given as the Qualifier parameter or in the name (fn:alias); missing is
// the operation's 404 message.
func (s *URLs) target(ctx context.Context, t Target, missing string) (name, qualifier string, err error) {
	name, q, err := s.name(t)
	if err != nil {
		return "", "", err
	}
	if p := t.Qualifier; p != "" && (!urlQualifier().MatchString(p) || isNumber(p)) {
		return "", "", apierr.Validation("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)", p)
	}
	if _, err := s.functions.Get(ctx, name); errors.Is(err, store.ErrNotFound) {
		return "", "", apierr.ResourceNotFound("%s", missing)
	} else if err != nil {
		return "", "", err
	}
	if q == lambda.LatestVersion {
		q = ""
	}
	if q != "" {
		if isNumber(q) {
			return "", "", apierr.ResourceNotFound("%s", missing)
		}
		if _, err := s.aliases.Get(ctx, name, q); errors.Is(err, store.ErrNotFound) {
			return "", "", apierr.ResourceNotFound("%s", missing)
		} else if err != nil {
			return "", "", err
		}
	}
	return name, q, nil
}

func (s *URLs) find(ctx context.Context, name, qualifier string) (*lambda.FunctionURL, error) {
	all, err := s.urls.List(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, u := range all {
		if u.Qualifier == qualifier {
			return u, nil
		}
	}
	return nil, apierr.ResourceNotFound("The resource you requested does not exist.")
}

// Create gives the function (or alias) t names a URL.
func (s *URLs) Create(ctx context.Context, t Target, in URLInput) (*lambda.FunctionURL, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	name, q, err := s.target(ctx, t, urlFunctionMissing)
	if err != nil {
		return nil, err
	}
	arn := s.account.FunctionARN(name, q)
	if _, err := s.find(ctx, name, q); err == nil {
		return nil, apierr.ResourceConflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", arn)
	}
	now := lambda.FormatTime(time.Now())
	u := &lambda.FunctionURL{ID: newURLID(), Function: name, Qualifier: q, Config: lambda.FunctionURLConfig{
		FunctionArn: arn, AuthType: *in.AuthType, Cors: in.Cors, CreationTime: now, LastModifiedTime: now, InvokeMode: "BUFFERED"}}
	set(&u.Config.InvokeMode, in.InvokeMode)
	rev, err := s.urls.Create(ctx, u)
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.URLs, rev)
	return u, nil
}

// Get returns the URL of the function (or alias) t names.
func (s *URLs) Get(ctx context.Context, t Target) (*lambda.FunctionURL, error) {
	name, q, err := s.target(ctx, t, urlResourceMissing)
	if err != nil {
		return nil, err
	}
	return s.find(ctx, name, q)
}

// Update changes the URL of the function (or alias) t names.
func (s *URLs) Update(ctx context.Context, t Target, in URLInput) (*lambda.FunctionURL, error) {
	if err := in.validate(false); err != nil {
		return nil, err
	}
	name, q, err := s.target(ctx, t, urlFunctionMissing)
	if err != nil {
		return nil, err
	}
	u, err := s.find(ctx, name, q)
	if err != nil {
		return nil, err
	}
	set(&u.Config.AuthType, in.AuthType)
	set(&u.Config.InvokeMode, in.InvokeMode)
	if in.Cors != nil {
		u.Config.Cors = in.Cors
	}
	u.Config.LastModifiedTime = lambda.FormatTime(time.Now())
	rev, err := s.urls.Update(ctx, u)
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.URLs, rev)
	return u, nil
}

// Delete removes the URL of the function (or alias) t names; it is an error if there is none.
func (s *URLs) Delete(ctx context.Context, t Target) error {
	name, q, err := s.target(ctx, t, urlResourceMissing)
	if err != nil {
		return err
	}
	u, err := s.find(ctx, name, q)
	if err != nil {
		return err
	}
	rev, err := s.urls.Delete(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	s.await(ctx, invoke.URLs, rev)
	return nil
}

// List returns every URL of the function t names (its Qualifier parameter is not read).
func (s *URLs) List(ctx context.Context, t Target) ([]*lambda.FunctionURL, error) {
	f, err := s.unqualified(ctx, t)
	var nf *apierr.Error
	if errors.As(err, &nf) && nf.Code == "ResourceNotFoundException" {
		return nil, apierr.ResourceNotFound(urlFunctionMissing)
	}
	if err != nil {
		return nil, err
	}
	return s.urls.List(ctx, f.Config.FunctionName)
}
