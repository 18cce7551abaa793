package lambda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// AWS's service-model patterns (as of 2025) for a FunctionName: the operations that address an
// existing function take a NamespacedFunctionName (dots in the name, $LATEST.PUBLISHED), and
// CreateFunction its own, stricter one. Their texts are quoted in ValidationExceptions.
const (
	functionNameModel = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?`
	createNameModel   = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	qualifierModel    = `\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+`
)

var (
	// The Go forms of the models above, capturing region, account, name and qualifier.
	functionNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:((?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?(?:(\d{12}):)?(?:function:)?([a-zA-Z0-9_.-]+)(?::(\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$`)
	})
	createNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:((?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?(?:(\d{12}):)?(?:function:)?([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$`)
	})
	qualifierParamRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_$-]+)$`) })
	envKeyPattern    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`) })
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
	return validationErrors([]string{constraintPart(value, field, constraint)})
}

// constraintPart is one failed constraint of a ValidationException's message.
func constraintPart(value, field, constraint string) string {
	return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

// validationErrors renders every failed constraint of a request, as AWS lists them.
func validationErrors(parts []string) error {
	if len(parts) == 1 {
		return &InvalidError{Model: true, Message: "1 validation error detected: " + parts[0]}
	}
	return &InvalidError{Model: true, Message: fmt.Sprintf("%d validation errors detected: %s", len(parts), strings.Join(parts, "; "))}
}

func invalidParameter(format string, args ...any) error {
	return &InvalidError{Message: fmt.Sprintf(format, args...)}
}

// FunctionRef is a FunctionName as a caller gave it: a name, NAME:QUALIFIER, a partial ARN
// (ACCOUNT:function:NAME[:QUALIFIER]) or a full ARN. Region and Account are what the ARN named
// ("" when the caller gave none).
type FunctionRef struct {
	Name, Qualifier string
	Region, Account string
}

func splitFunctionName(re *regexp.Regexp, s string) (FunctionRef, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return FunctionRef{}, false
	}
	return FunctionRef{Region: m[1], Account: m[2], Name: m[3], Qualifier: m[4]}, true
}

// ParseFunctionRef checks the syntax of the FunctionName of an operation on an existing
// function and splits it. Like AWS it bounds neither the name's length nor the ARN's: a name
// longer than a function's can be is simply not found.
func ParseFunctionRef(s string) (FunctionRef, error) {
	return ParseTarget(s, "")
}

// ParseTarget checks a FunctionName and the Qualifier parameter as AWS's service model does,
// reporting every failed constraint, and splits the name.
func ParseTarget(s, qualifier string) (FunctionRef, error) {
	// The common case, a plain name and a plain qualifier, without the regular expressions:
	// every invoke comes through here.
	if plainName(s) && (qualifier == "" || qualifier == LatestVersion || len(qualifier) <= 128 && plainName(qualifier)) {
		return FunctionRef{Name: s}, nil
	}
	var parts []string
	ref, ok := splitFunctionName(functionNameRE(), s)
	if !ok {
		parts = append(parts, constraintPart(s, "functionName", "Member must satisfy regular expression pattern: "+functionNameModel))
	}
	if qualifier != "" {
		if len(qualifier) > 128 {
			parts = append(parts, constraintPart(qualifier, "qualifier", "Member must have length less than or equal to 128"))
		}
		if !qualifierParamRE().MatchString(qualifier) {
			parts = append(parts, constraintPart(qualifier, "qualifier", "Member must satisfy regular expression pattern: "+qualifierModel))
		}
	}
	if parts != nil {
		return FunctionRef{}, validationErrors(parts)
	}
	return ref, nil
}

// plainName reports whether s is non-empty and made of [a-zA-Z0-9_-] only (a name that both
// FunctionName patterns take whole, and a qualifier that AWS's takes).
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseCreateName checks CreateFunction's FunctionName: AWS's model bounds it at 140 characters
// and a stricter pattern (both reported), and the service a function's name at 64.
func ParseCreateName(s string) (FunctionRef, error) {
	var parts []string
	if len(s) > 140 {
		parts = append(parts, constraintPart(s, "functionName", "Member must have length less than or equal to 140"))
	}
	ref, ok := splitFunctionName(createNameRE(), s)
	if !ok {
		parts = append(parts, constraintPart(s, "functionName", "Member must satisfy regular expression pattern: "+createNameModel))
	}
	if parts != nil {
		return FunctionRef{}, validationErrors(parts)
	}
	if len(ref.Name) > 64 {
		return FunctionRef{}, &InvalidError{Message: "1 validation error detected: " +
			constraintPart(s, "functionName", "Member must have length less than or equal to 64")}
	}
	return ref, nil
}

// ParseFunctionName splits the FunctionName parameter into the bare name and an optional
// qualifier, checking its syntax only. Callers that serve a request use Account.Resolve, which
// also refuses ARNs of another region or account.
func ParseFunctionName(s string) (name, qualifier string, err error) {
	ref, err := ParseFunctionRef(s)
	return ref.Name, ref.Qualifier, err
}

// Resolve parses the FunctionName of a request for API operation op (as the Lambda API names
// it: "GetFunction", "Invoke", …) and refuses what AWS refuses: a function in another region
// (404) or in another account (403). Every operation that takes a FunctionName comes through
// here, so they all answer alike.
func (a Account) Resolve(s, op string) (FunctionRef, error) {
	return a.ResolveTarget(s, "", op)
}

// ResolveTarget is Resolve for a FunctionName and its Qualifier parameter, checked together as
// AWS checks them (the qualifier's agreement with the name is the caller's to check).
func (a Account) ResolveTarget(s, qualifier, op string) (FunctionRef, error) {
	var ref FunctionRef
	var err error
	if op == "CreateFunction" {
		ref, err = ParseCreateName(s)
	} else {
		ref, err = ParseTarget(s, qualifier)
	}
	if err != nil {
		return ref, err
	}
	foreignAccount := ref.Account != "" && ref.Account != a.ID
	crossAccount := crossAccountOps[op]
	// An operation that may never reach another account (CreateFunction, …) is refused for that
	// before anything else; one that may, only once the region is known to be this one.
	if foreignAccount && !crossAccount {
		return ref, &ForeignAccountError{}
	}
	if ref.Region != "" && ref.Region != a.Region {
		return ref, &ForeignRegionError{Region: ref.Region, Local: a.Region}
	}
	if foreignAccount {
		region := ref.Region
		if region == "" {
			region = a.Region
		}
		arn := Account{Region: region, ID: ref.Account}.FunctionARN(ref.Name, ref.Qualifier)
		return ref, a.denied(IAMAction(op), arn)
	}
	return ref, nil
}

// IAMAction is the IAM action that authorizes Lambda API operation op.
func IAMAction(op string) string {
	switch op {
	case "Invoke":
		return "lambda:InvokeFunction"
	}
	return "lambda:" + op
}

// denied is IAM's answer to a caller of this account acting on a resource of another account
// that no resource-based policy opens to it (Flint hosts one account: none can). Flint's access
// keys act for the whole account, hence its root.
func (a Account) denied(action, resource string) error {
	return &ForeignAccountError{Message: "User: arn:aws:iam::" + a.ID + ":root is not authorized to perform: " + action +
		" on resource: " + resource + " because no resource-based policy allows the " + action + " action"}
}

// crossAccountOps are the operations AWS lets a resource-based policy open to another account
// (https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-cross-account.html); for
// the others an ARN of another account is refused outright, without a message.
var crossAccountOps = map[string]bool{
	"CreateAlias": true, "DeleteAlias": true, "DeleteFunction": true, "DeleteFunctionConcurrency": true,
	"DeleteFunctionEventInvokeConfig": true, "DeleteProvisionedConcurrencyConfig": true, "GetAlias": true,
	"GetFunction": true, "GetFunctionConcurrency": true, "GetFunctionConfiguration": true,
	"GetFunctionEventInvokeConfig": true, "GetPolicy": true, "GetProvisionedConcurrencyConfig": true,
	"Invoke": true, "InvokeAsync": true, "ListAliases": true, "ListFunctionEventInvokeConfigs": true,
	"ListProvisionedConcurrencyConfigs": true, "ListTags": true, "ListVersionsByFunction": true,
	"PublishVersion": true, "PutFunctionConcurrency": true, "PutFunctionEventInvokeConfig": true,
	"PutProvisionedConcurrencyConfig": true, "TagResource": true, "UntagResource": true, "UpdateAlias": true,
	"UpdateFunctionCode": true, "UpdateFunctionEventInvokeConfig": true,
}

// ResolveLayer checks that a layer version ARN is of this region and account, as a function's
// Layers must be (AWS's answers: InvalidParameterValueException for another region, IAM's
// denial of lambda:GetLayerVersion for another account).
func (a Account) ResolveLayer(arn, region, account string) error {
	if region != a.Region {
		return invalidParameter("Layers are not in the same region as the function. Layers are expected to be in region %s.", a.Region)
	}
	if account != a.ID {
		return a.denied("lambda:GetLayerVersion", arn)
	}
	return nil
}

// ForeignRegionError is a FunctionName ARN of a region other than the one Flint presents.
type ForeignRegionError struct{ Region, Local string }

func (e *ForeignRegionError) Error() string {
	return "Functions from '" + e.Region + "' are not reachable in this region ('" + e.Local + "')"
}

// ForeignAccountError is an ARN of an account other than Flint's (AWS's AccessDeniedException).
// Message is empty where AWS sends none (its body carries "Message": null).
type ForeignAccountError struct{ Message string }

func (e *ForeignAccountError) Error() string {
	if e.Message == "" {
		return "access denied"
	}
	return e.Message
}

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

// ValidateHandler checks Handler (required for zip functions). AWS's pattern is [^\s]+ (Java's \s:
// space, \t, \n, \v, \f, \r); Flint also refuses NUL, which no environment variable (_HANDLER)
// or argument can carry: accepted, it would fail every invoke.
func ValidateHandler(h string) error {
	if h == "" {
		return invalidParameter("The Handler parameter must be set for a function of PackageType Zip.")
	}
	if len(h) > MaxHandler {
		return validationError(h, "handler", "Member must have length less than or equal to 128")
	}
	if strings.ContainsAny(h, " \t\n\v\f\r\x00") {
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

// ValidateEnvironment checks user variables: names, values, reserved keys and the 4 KB total.
// AWS's messages for the map leave out the offending entry (the values are sensitive).
func ValidateEnvironment(vars map[string]string, order []string) error {
	var reserved []string
	for k, v := range vars {
		if !envKeyPattern().MatchString(k) {
			return &InvalidError{Model: true, Message: "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"}
		}
		// NUL ends a C string: no process environment can hold it, so every start would fail.
		if strings.IndexByte(v, 0) >= 0 {
			return &InvalidError{Model: true, Message: "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map value must satisfy constraint: [Member must satisfy regular expression pattern: [^\\x00]*]"}
		}
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		slices.Sort(reserved)
		return invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ", "))
	}
	b := envJSON(vars, order)
	if len(b) > MaxEnvBytes {
		return invalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", b)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// FormatList renders a list value as AWS's messages do: [a, b].
func FormatList(values []string) string { return "[" + strings.Join(values, ", ") + "]" }

// ValidateArchitectures checks a function's Architectures: exactly one, x86_64 or arm64.
func ValidateArchitectures(archs []string) error {
	switch {
	case len(archs) > 1:
		return validationError(FormatList(archs), "architectures", "Member must have length less than or equal to 1")
	case len(archs) == 0:
		return validationError(FormatList(archs), "architectures", "Member must have length greater than or equal to 1")
	case archs[0] != "x86_64" && archs[0] != "arm64":
		return validationError(FormatList(archs), "architectures", "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]")
	}
	return nil
}

// envJSON is the variables as AWS measures them: a JSON object in the order the request sent
// them (order), or by name when the order is not known.
func envJSON(vars map[string]string, order []string) []byte {
	if len(order) != len(vars) {
		b, _ := json.Marshal(vars)
		return b
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(vars[k])
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
