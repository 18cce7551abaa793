package control

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"strings"
	"sync"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Tags serves ListTags, TagResource and UntagResource on functions.
type Tags struct {
	account lambda.Account
	awaiter
	functions functionRecords // tags live on $LATEST's record
}

// TagsInput is TagResource's request body, and ListTags's answer.
type TagsInput struct {
	Tags map[string]string `json:"Tags"`
}

// maxTags is Lambda's limit of tags per function.
const maxTags = 50

// resourceModel is AWS's pattern for the Resource of the tagging operations.
const resourceModel = `arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)`

// taggable is resourceModel in Go, capturing the kind of resource and the rest.
var taggable = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d:\d{12}:(?:(function):([a-zA-Z0-9_-]+)(?::(?:\$LATEST|[a-zA-Z0-9_-]+))?|(layer):[a-zA-Z0-9_-]+|(code-signing-config):csc-[a-z0-9]{17}|(event-source-mapping):[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|(capacity-provider):[a-zA-Z0-9_-]+)$`)
})

// tooManyTags is AWS's answer when a resource would carry more than maxTags tags.
func tooManyTags() error {
	return apierr.InvalidParameterValue("Number of tags exceeds resource tag limit.")
}

// checkTags applies Lambda's limits on tag keys and values.
func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return tooManyTags()
	}
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 {
			return apierr.InvalidParameterValue("Tag keys must be 1 to 128 characters and values at most 256 characters.")
		}
	}
	return nil
}

// function reads the function t names by its unqualified ARN (t.Name; t.Qualifier is not used).
// Flint tags functions only: the other resources AWS tags are answered as AWS answers for ones
// that do not exist (Flint has no capacity providers; mappings and layers it has carry no tags).
func (s *Tags) function(ctx context.Context, t Target) (store.Function, error) {
	arn := t.Name
	m := taggable().FindStringSubmatch(arn)
	if m == nil {
		return store.Function{}, apierr.Validation("1 validation error detected: Value '%s' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", arn, resourceModel)
	}
	if _, err := s.account.Resolve(arn, t.Op); err != nil && m[1] == "function" {
		return store.Function{}, err
	}
	switch {
	case m[5] == "event-source-mapping":
		return store.Function{}, apierr.ResourceNotFound("Event source mapping not found: %s", arn)
	case m[6] == "capacity-provider":
		return store.Function{}, apierr.ResourceNotFound("Capacity provider not found: %s", arn)
	case m[1] != "function":
		return store.Function{}, apierr.InvalidParameterValue("Flint tags functions only: %s", arn)
	}
	if strings.Count(strings.SplitN(arn, ":function:", 2)[1], ":") > 0 {
		return store.Function{}, apierr.InvalidParameterValue("Tags on function aliases and versions are not supported. Please specify a function ARN.")
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
	if len(in.Tags) == 0 {
		return apierr.InvalidParameterValue("An error occurred and the request cannot be processed.")
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
			return tooManyTags()
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
	_, err := s.rewriteFunction(ctx, s.functions, func() (store.Function, error) { return s.function(ctx, t) },
		func(next *lambda.Function) (bool, error) {
			next.Tags = maps.Clone(next.Tags)
			if next.Tags == nil {
				next.Tags = map[string]string{}
			}
			if err := change(next.Tags); err != nil {
				return false, err
			}
			if len(next.Tags) == 0 {
				next.Tags = nil
			}
			return true, nil
		})
	return err
}
