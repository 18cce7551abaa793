package worker

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
)

// Placeholder credentials for environments whose user variables set none. Lambda gives every
// environment its role's temporary credentials; Flint has no roles. Without a key pair the AWS
// SDKs skip the environment's variables (AWS_SESSION_TOKEN alone is not credentials) and probe
// the EC2 instance metadata service, which takes seconds to fail. Not secrets: they grant nothing.
const (
	placeholderAccessKeyID     = "ASIAFLINTPLACEHOLDER"
	placeholderSecretAccessKey = "flint-placeholder-secret-access-key-none"
)

// newSessionToken returns an environment's AWS_SESSION_TOKEN: 32 random bytes, base64url.
func newSessionToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program rather than return short
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// environ is the environment's variables: the user's, then Lambda's reserved ones.
func (p *Pool) environ(runtimeEnv []string, provisioned bool, sessionToken, logStream string) ([]string, error) {
	initType := "on-demand"
	if provisioned {
		initType = "provisioned-concurrency"
	}
	fn := p.fn
	var user map[string]string
	if fn.Env != nil {
		var err error
		if user, err = fn.Env(); err != nil {
			return nil, fmt.Errorf("environment variables of %s: %w", fn.Name, err)
		}
	}
	env := make([]string, 0, len(user)+27+len(runtimeEnv))
	keys := make([]string, 0, len(user))
	for k := range user {
		if k != "AWS_SESSION_TOKEN" { // always the environment's own (below): its services trust it
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+user[k])
	}
	// Lambda's values are defaults for the keys a user may set too (PATH, LANG, TZ, PYTHONPATH…):
	// the user's wins, and only it is passed (runtimes disagree on which of two duplicates counts:
	// glibc's getenv takes the first, Python's os.environ the last).
	defaults := func(kvs ...string) {
		for _, kv := range kvs {
			k, _, _ := strings.Cut(kv, "=")
			if _, set := user[k]; !set || k == "AWS_SESSION_TOKEN" {
				env = append(env, kv)
			}
		}
	}
	defaults(p.m.platformEnv()...)
	defaults(
		"_HANDLER="+fn.Handler,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION="+fn.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME="+cmp.Or(fn.Logging.Group, "/aws/lambda/"+fn.Name),
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStream,
		"AWS_LAMBDA_INITIALIZATION_TYPE="+initType,
		"AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
		"AWS_SESSION_TOKEN="+sessionToken,
	)
	if fn.Logging.JSON {
		// What the runtime clients read (AWS's as Flint's): JSON records, and the level below
		// which application logs are dropped.
		defaults("AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL="+cmp.Or(fn.Logging.ApplicationLevel, "INFO"))
	}
	// The API refuses the reserved keys (these among them) in a function's configuration, as
	// Lambda does; should a user's value get here anyway, it wins as any other.
	defaults("AWS_ACCESS_KEY_ID="+placeholderAccessKeyID, "AWS_SECRET_ACCESS_KEY="+placeholderSecretAccessKey)
	defaults(runtimeEnv...)
	return env, nil
}

// platformEnv is the part of Lambda's reserved variables that is the same for every function.
func (m *Manager) platformEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"LAMBDA_TASK_ROOT=" + sandbox.GuestTaskRoot,
		"LAMBDA_RUNTIME_DIR=" + sandbox.GuestRuntimeDir,
		"AWS_REGION=" + m.cfg.Region,
		"AWS_DEFAULT_REGION=" + m.cfg.Region,
	}
}

// baseEnviron is what a pre-initialized runtime of rt starts with: the variables every function
// of rt shares (no function's, no user's).
func (m *Manager) baseEnviron(rt runtimes.Runtime) ([]string, error) {
	_, renv, err := m.cfg.Runtimes.Entrypoint(rt, "", "")
	if err != nil {
		return nil, err
	}
	return append(m.platformEnv(), renv...), nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logStreamName names a new environment's log stream as Lambda does: the day it starts, its
// version in brackets, 32 hex digits; in a custom log group, which several functions may share,
// the function's name, then the version and the 32 hex digits each in brackets. The runtime sees
// it as AWS_LAMBDA_LOG_STREAM_NAME and the CloudWatch Logs API shows the environment's records
// under it.
func (p *Pool) logStreamName() string {
	day := p.m.now().UTC().Format("2006/01/02")
	if g := p.fn.Logging.Group; g != "" && g != "/aws/lambda/"+p.fn.Name {
		return day + "/" + p.fn.Name + "[" + p.fn.Version + "][" + newID() + newID() + "]"
	}
	return day + "/[" + p.fn.Version + "]" + newID() + newID()
}
