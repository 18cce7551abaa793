package api_test

import (
	"regexp"
	"testing"
)

func init() {
	// Key ids are random; the counts depend on the records the other tests left on the shared
	// server (control's TestMasterKey checks them).
	scrubs = append(scrubs,
		scrub{regexp.MustCompile(`mk-[0-9a-f]{16}`), "<key-id>"},
		scrub{regexp.MustCompile(`("(?:FunctionRecordsRewrapped|SecretVersionsRewrapped)": )\d+`), "${1}<count>"})
}

// TestGoldenMasterKey: POST /flint/v1/master-key/rotate, twice (the second retires the key the
// first made active).
func TestGoldenMasterKey(t *testing.T) {
	runGolden(t, []step{
		{"rotate", "POST", "/flint/v1/master-key/rotate", ""},
		{"rotate-again", "POST", "/flint/v1/master-key/rotate", ""},
	})
}

// TestGoldenRuntimes: GET /flint/v1/runtimes, this node's interpreters (the golden file is this
// machine's).
func TestGoldenRuntimes(t *testing.T) {
	runGolden(t, []step{{"list", "GET", "/flint/v1/runtimes", ""}})
}
