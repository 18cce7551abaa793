package lambda

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	namePattern      = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	qualifierPattern = regexp.MustCompile(`^(\$LATEST|[a-zA-Z0-9_-]{1,128})$`)
	envKeyPattern    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`)
	arnPattern       = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:lambda:([a-z]{2}(-gov)?-[a-z]+-\d):(\d{12}):function:(.+)$`)
	partialPattern   = regexp.MustCompile(`^(\d{12}):function:(.+)$`)
)

// reservedEnv are the variables Lambda sets itself and refuses in configuration.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// InvalidError is a rejected parameter. Model says whether it broke a constraint of the service
// model (AWS's ValidationException) or a rule of the service (InvalidParameterValueException).
type InvalidError struct {
	Model   bool
	Message string
}

func (e *InvalidError) Error() string { return e.Message }

// validationError renders the service model's constraint failures as AWS does.
func validationError(value, field, constraint string) error {
	return &InvalidError{Model: true, Message: fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)}
}

func invalidParameter(format string, args ...any) error {
	return &InvalidError{Message: fmt.Sprintf(format, args...)}
}

// ParseFunctionName splits the FunctionName path parameter (a name, NAME:QUALIFIER, a partial
// ARN or a full ARN) into the bare name and an optional qualifier.
func ParseFunctionName(s string) (name, qualifier string, err error) {
	rest := s
	if m := arnPattern.FindStringSubmatch(s); m != nil {
		rest = m[5]
	} else if m := partialPattern.FindStringSubmatch(s); m != nil {
		rest = m[2]
	}
	name, qualifier, _ = strings.Cut(rest, ":")
	if !namePattern.MatchString(name) || len(s) > 256 {
		return "", "", validationError(s, "functionName",
			`Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`)
	}
	if qualifier != "" && !qualifierPattern.MatchString(qualifier) {
		return "", "", validationError(s, "functionName", `Member must satisfy regular expression pattern: (\$LATEST|[a-zA-Z0-9-_]+)`)
	}
	return name, qualifier, nil
}

// ValidQualifier reports whether q is a well-formed qualifier.
func ValidQualifier(q string) bool { return qualifierPattern.MatchString(q) }

// ValidateMemory checks MemorySize.
func ValidateMemory(mb int) error {
	if mb < MinMemoryMB {
		return validationError(itoa(mb), "memorySize", "Member must have value greater than or equal to 128")
	}
	if mb > MaxMemoryMB {
		return validationError(itoa(mb), "memorySize", "Member must have value less than or equal to 10240")
	}
	return nil
}

// ValidateTimeout checks Timeout.
func ValidateTimeout(sec int) error {
	if sec < MinTimeoutSec {
		return validationError(itoa(sec), "timeout", "Member must have value greater than or equal to 1")
	}
	if sec > MaxTimeoutSec {
		return validationError(itoa(sec), "timeout", "Member must have value less than or equal to 900")
	}
	return nil
}

// ValidateEphemeral checks EphemeralStorage.Size.
func ValidateEphemeral(mb int) error {
	if mb < MinEphemeralMB || mb > MaxEphemeralMB {
		return validationError(itoa(mb), "ephemeralStorage.size", "Member must have value between 512 and 10240")
	}
	return nil
}

// ValidateHandler checks Handler (required for zip functions).
func ValidateHandler(h string) error {
	if h == "" {
		return invalidParameter("The Handler parameter must be set for a function of PackageType Zip.")
	}
	if len(h) > MaxHandler || strings.ContainsAny(h, " \t\r\n") {
		return validationError(h, "handler", `Member must satisfy regular expression pattern: [^\s]+`)
	}
	return nil
}

// ValidateDescription checks Description.
func ValidateDescription(d string) error {
	if len(d) > MaxDescription {
		return validationError(d, "description", "Member must have length less than or equal to 256")
	}
	return nil
}

// ValidateEnvironment checks user variables: names, reserved keys and the 4 KB total.
func ValidateEnvironment(vars map[string]string) error {
	var reserved []string
	for k := range vars {
		if !envKeyPattern.MatchString(k) {
			return validationError(k, "environment.variables", "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+")
		}
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		slices.Sort(reserved)
		return invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ", "))
	}
	b, _ := json.Marshal(vars)
	if len(b) > MaxEnvBytes {
		return invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", b)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
