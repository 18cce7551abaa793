package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestGoldenTags: TagResource, ListTags, UntagResource and their rejections.
func TestGoldenTags(t *testing.T) {
	const (
		base = "/2017-03-31/tags/"
		arn  = "arn:aws:lambda:us-east-1:000000000000:function:golden-tags"
	)
	tooMany := map[string]string{}
	for i := range 49 {
		tooMany[fmt.Sprintf("k%02d", i)] = "v"
	}
	many, _ := json.Marshal(map[string]any{"Tags": tooMany})
	runGolden(t, append(createFunction("golden-tags"), []step{
		{"list-none", "GET", base + arn, ""},
		{"tag", "POST", base + arn, `{"Tags":{"team":"core","env":"prod"}}`},
		{"list", "GET", base + arn, ""},
		{"tag-more", "POST", base + arn, `{"Tags":{"env":"dev","cost":"7"}}`},
		{"list-more", "GET", base + arn, ""},
		{"tag-null", "POST", base + arn, `{}`},
		{"tag-empty-body", "POST", base + arn, ``},
		{"tag-bad-json", "POST", base + arn, `{"Tags":`},
		{"tag-wrong-type", "POST", base + arn, `{"Tags":["a"]}`},
		{"tag-reserved", "POST", base + arn, `{"Tags":{"AWS:x":"1"}}`},
		{"tag-long-key", "POST", base + arn, `{"Tags":{"` + strings.Repeat("k", 129) + `":"1"}}`},
		{"tag-long-value", "POST", base + arn, `{"Tags":{"k":"` + strings.Repeat("v", 257) + `"}}`},
		{"tag-empty-key", "POST", base + arn, `{"Tags":{"":"1"}}`},
		{"tag-too-many", "POST", base + arn, string(many)},
		{"list-after-rejections", "GET", base + arn, ""},
		{"tag-qualified", "POST", base + arn + ":1", `{"Tags":{"a":"1"}}`},
		{"list-qualified", "GET", base + arn + ":$LATEST", ""},
		{"list-bad-arn", "GET", base + "golden-tags", ""},
		{"list-missing", "GET", base + "arn:aws:lambda:us-east-1:000000000000:function:golden-tags-nope", ""},
		{"list-foreign-region", "GET", base + "arn:aws:lambda:eu-west-1:123456789012:function:golden-tags", ""},
		{"list-foreign-account", "GET", base + "arn:aws:lambda:us-east-1:210987654321:function:golden-tags", ""},
		{"tag-foreign-account", "POST", base + "arn:aws:lambda:us-east-1:210987654321:function:golden-tags", `{"Tags":{"a":"1"}}`},
		{"untag", "DELETE", base + arn + "?tagKeys=env&tagKeys=nope", ""},
		{"list-untagged", "GET", base + arn, ""},
		{"untag-none", "DELETE", base + arn, ""},
		{"untag-missing", "DELETE", base + "arn:aws:lambda:us-east-1:000000000000:function:golden-tags-nope?tagKeys=a", ""},
		{"untag-all", "DELETE", base + arn + "?tagKeys=team&tagKeys=cost", ""},
		{"list-empty", "GET", base + arn, ""},
		{"get-function", "GET", "/2015-03-31/functions/golden-tags", ""},
	}...))
}
