package control

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"strings"
	"sync"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// taggedFunctions is the functions repository (store.Functions): tags live on $LATEST's record.
type taggedFunctions interface {
	Get(ctx context.Context, name string) (store.Function, error)
	Update(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error)
}

// Tags serves ListTags, TagResource and UntagResource on functions.
type Tags struct {
	account lambda.Account
	awaiter
	functions taggedFunctions
}

// TagsInput is TagResource's request body, and ListTags's answer.
type TagsInput struct {
	Tags map[string]string `json:"Tags"`
}

// maxTags is Lambda's limit of tags per function.
const maxTags = 50

// taggableARN is an unqualified function ARN: the only resource Flint tags.
var taggableARN = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:([a-zA-Z0-9-_]{1,64})$`)
})

// checkTags applies Lambda's limits on tag keys and values.
func checkTags(tags map[string]string) error {
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 {
			return apierr.InvalidParameterValue("Tag keys must be 1 to 128 characters and values at most 256 characters.")
		}
	}
	return nil
}

// function reads the function t names by its unqualified ARN (t.Name; t.Qualifier is not used).
func (s *Tags) function(ctx context.Context, t Target) (store.Function, error) {
	arn := t.Name
	m := taggableARN().FindStringSubmatch(arn)
	if m == nil {
		if strings.Contains(arn, ":function:") {
			return store.Function{}, apierr.InvalidParameterValue("Tags are not supported on function versions or aliases; use the unqualified function ARN: %s", arn)
		}
		return store.Function{}, apierr.Validation("1 validation error detected: Value '%s' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", arn)
	}
	if _, err := s.account.Resolve(arn, t.Op); err != nil {
		return store.Function{}, err
	}
	f, err := s.functions.Get(ctx, m[2])
	if errors.Is(err, store.ErrNotFound) {
		return f, apierr.ResourceNotFound("Function not found: %s", s.account.FunctionARN(m[2], ""))
	}
	return f, err
}

// List returns the function's tags (an empty map when it has none).
func (s *Tags) List(ctx context.Context, t Target) (*TagsInput, error) {
	f, err := s.function(ctx, t)
	if err != nil {
		return nil, err
	}
	tags := f.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return &TagsInput{Tags: tags}, nil
}

// Tag adds in.Tags to the function's tags, replacing the values of keys it has.
func (s *Tags) Tag(ctx context.Context, t Target, in TagsInput) error {
	if in.Tags == nil {
		return apierr.Validation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	if err := checkTags(in.Tags); err != nil {
		return err
	}
	for k := range in.Tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return apierr.InvalidParameterValue("Tag keys starting with aws: are reserved: %s", k)
		}
	}
	return s.update(ctx, t, func(tags map[string]string) error {
		maps.Copy(tags, in.Tags)
		if len(tags) > maxTags {
			return apierr.InvalidParameterValue("A function can have at most %d tags.", maxTags)
		}
		return nil
	})
}

// Untag removes keys from the function's tags; keys it does not have are ignored.
func (s *Tags) Untag(ctx context.Context, t Target, keys []string) error {
	if len(keys) == 0 {
		return apierr.Validation("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	return s.update(ctx, t, func(tags map[string]string) error {
		for _, k := range keys {
			delete(tags, k)
		}
		return nil
	})
}

// update applies change to the function's tags, starting again from a fresh read when another
// request wrote the function in between. Its environments stay warm: tags are not configuration.
func (s *Tags) update(ctx context.Context, t Target, change func(map[string]string) error) error {
	for range 5 {
		f, err := s.function(ctx, t)
		if err != nil {
			return err
		}
		next := *f.Function
		next.Tags = maps.Clone(f.Tags)
		if next.Tags == nil {
			next.Tags = map[string]string{}
		}
		if err := change(next.Tags); err != nil {
			return err
		}
		if len(next.Tags) == 0 {
			next.Tags = nil
		}
		rev, err := s.functions.Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		s.await(ctx, invoke.Functions, rev)
		return nil
	}
	return apierr.ResourceConflict("The function was modified concurrently; try again.")
}
