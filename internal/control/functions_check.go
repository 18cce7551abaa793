package control

import (
	"cmp"
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

// The checks of a function's configuration that CreateFunction, UpdateFunctionCode and
// UpdateFunctionConfiguration share: values, runtime, tags and layers.

var (
	rolePattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	})
	// functionLayerPattern is a layer version ARN as a function's Layers name it.
	functionLayerPattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]{1,140})(?::(\d+))?$`)
	})
)

// maxFunctionLayers is how many layers a function may use.
const maxFunctionLayers = 5

func badRole(role string) error {
	return apierr.Validation("1 validation error detected: Value '%s' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+", role)
}

// validateConfig checks everything in a configuration that a client can set.
func (s *Functions) validateConfig(c *lambda.FunctionConfiguration) error {
	if c.Runtime == "" {
		return apierr.InvalidParameterValue("The Runtime parameter must be set for a function of PackageType Zip.")
	}
	if _, ok := runtimes.Lookup(c.Runtime); !ok {
		return apierr.InvalidParameterValue("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: %s or be a valid ARN", c.Runtime, lambda.FormatList(runtimes.Names()))
	}
	if err := s.checkRuntime(c); err != nil {
		return err
	}
	for _, check := range []error{
		lambda.ValidateHandler(c.Handler),
		lambda.ValidateMemory(c.MemorySize),
		lambda.ValidateTimeout(c.Timeout),
		lambda.ValidateDescription(c.Description),
		lambda.ValidateEphemeral(c.EphemeralStorage.Size),
	} {
		if check != nil {
			return check
		}
	}
	if c.Environment != nil {
		if err := lambda.ValidateEnvironment(c.Environment.Variables, c.Environment.Order); err != nil {
			return err
		}
	}
	if err := lambda.ValidateArchitectures(c.Architectures); err != nil {
		return err
	}
	if dl := c.DeadLetterConfig; dl != nil && dl.TargetArn != "" && !asyncq.ValidDestination(dl.TargetArn) {
		return apierr.InvalidParameterValue("The provided DeadLetterConfig TargetArn %s is invalid. Flint accepts functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME) and JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME).", dl.TargetArn)
	}
	if c.TracingConfig != nil && c.TracingConfig.Mode != "Active" && c.TracingConfig.Mode != "PassThrough" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]", c.TracingConfig.Mode)
	}
	if c.LoggingConfig != nil && c.LoggingConfig.LogFormat != "Text" && c.LoggingConfig.LogFormat != "JSON" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.logFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]", c.LoggingConfig.LogFormat)
	}
	return nil
}

// checkRuntime refuses, on a strict node, a runtime without an interpreter of its version, and
// otherwise says in the operator log when a function will run on another version.
func (s *Functions) checkRuntime(c *lambda.FunctionConfiguration) error {
	if err := s.runtimes.Check(c.Runtime); err != nil {
		return apierr.InvalidParameterValue("%s", err.Error())
	}
	if i, ok := s.runtimes.Lookup(c.Runtime); ok && !i.Exact && s.log != nil {
		s.log.Warn("function runs on another runtime version: "+i.Problem(), "function", c.FunctionName,
			"runtime", c.Runtime, "interpreter", i.Path, "version", i.Version)
	}
	return nil
}

// resolveLayers checks a function's Layers (at most 5 existing layer versions) and returns their
// configuration entries, code keys and unzipped total.
func (s *Functions) resolveLayers(ctx context.Context, arns []string) ([]lambda.FunctionLayer, []string, int64, error) {
	if len(arns) > maxFunctionLayers {
		return nil, nil, 0, apierr.InvalidParameterValue("Cannot reference more than %d layers.", maxFunctionLayers)
	}
	var (
		cfg   []lambda.FunctionLayer
		keys  []string
		total int64
	)
	for _, arn := range arns {
		m := functionLayerPattern().FindStringSubmatch(arn)
		if m == nil || m[4] == "" {
			return nil, nil, 0, apierr.Validation("1 validation error detected: Value '%s' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: %s, Member must not be null]", lambda.FormatList(arns), layerVersionARNModel)
		}
		if err := s.account.ResolveLayer(arn, m[1], m[2]); err != nil {
			return nil, nil, 0, err
		}
		for _, prev := range cfg {
			if p := functionLayerPattern().FindStringSubmatch(prev.Arn); p[3] == m[3] {
				return nil, nil, 0, apierr.InvalidParameterValue("Two different versions of the same layer are not allowed to be referenced in the same function. %s and %s are versions of the same layer.", prev.Arn, arn)
			}
		}
		n, _ := strconv.Atoi(m[4])
		l, err := s.layers.Get(ctx, m[3], n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, 0, apierr.InvalidParameterValue("Layer version %s does not exist.", arn)
		}
		if err != nil {
			return nil, nil, 0, err
		}
		cfg = append(cfg, lambda.FunctionLayer{Arn: arn, CodeSize: l.Layer.Content.CodeSize})
		keys = append(keys, l.CodeKey)
		total += l.UnzippedSize
	}
	return cfg, keys, total, nil
}

// checkLayerMerge refuses layers that cannot be extracted together into /opt: each layer's
// symlinks were checked on their own when it was published, but one layer's link can lead
// elsewhere once another layer's files sit beside it ("esc" -> "s/s/../.." with "s" -> "."
// from another layer leaves /opt). The layers are unpacked (usually already) and their merged
// tree checked without writing it.
func (s *Functions) checkLayerMerge(ctx context.Context, arns, keys []string) error {
	if len(keys) < 2 {
		return nil
	}
	dirs := make([]string, 0, len(keys))
	for _, k := range keys {
		d, err := s.code.Unpacked(ctx, k)
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
	}
	err := artifact.CheckMerge(dirs)
	if errors.Is(err, artifact.ErrUnsafeSymlink) {
		why := strings.TrimSuffix(err.Error(), ": "+artifact.ErrUnsafeSymlink.Error())
		return apierr.InvalidParameterValue("Layers %s cannot be used together: extracted in order into /opt, they make a symbolic link that leads outside /opt (%s).", strings.Join(arns, ", "), why)
	}
	return err
}

var logGroupPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`) })

// loggingConfig is the LoggingConfig a function named name stores after a request that gave in
// over cur (nil when creating). As on Lambda, a LoggingConfig in the request replaces every
// logging control (an omitted format is Text, an omitted group the function's default); the log
// levels exist only with the JSON format, where they default to INFO.
func loggingConfig(name string, cur, in *lambda.LoggingConfig) (*lambda.LoggingConfig, error) {
	if in == nil {
		if cur != nil {
			return cur, nil
		}
		in = &lambda.LoggingConfig{}
	}
	out := &lambda.LoggingConfig{LogFormat: in.LogFormat, LogGroup: in.LogGroup}
	if out.LogFormat == "" {
		out.LogFormat = "Text"
	}
	if out.LogFormat != "Text" && out.LogFormat != "JSON" {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.logFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]", in.LogFormat)
	}
	if l := in.ApplicationLogLevel; l != "" && !slices.Contains([]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, l) {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.applicationLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]", l)
	}
	if l := in.SystemLogLevel; l != "" && !slices.Contains([]string{"DEBUG", "INFO", "WARN"}, l) {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.systemLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [DEBUG, INFO, WARN]", l)
	}
	if g := in.LogGroup; g != "" && (len(g) > 512 || !logGroupPattern().MatchString(g)) {
		if len(g) > 512 {
			return nil, apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.logGroup' failed to satisfy constraint: Member must have length less than or equal to 512", g)
		}
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'loggingConfig.logGroup' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+", g)
	}
	if out.LogFormat == "Text" {
		if in.ApplicationLogLevel != "" || in.SystemLogLevel != "" {
			return nil, apierr.InvalidParameterValue(`LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change the LogFormat to "JSON" and try again.`)
		}
	} else {
		out.ApplicationLogLevel, out.SystemLogLevel = cmp.Or(in.ApplicationLogLevel, "INFO"), cmp.Or(in.SystemLogLevel, "INFO")
	}
	if out.LogGroup == "" {
		out.LogGroup = "/aws/lambda/" + name
	}
	return out, nil
}
