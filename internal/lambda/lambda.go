// Package lambda holds Flint's domain types (functions and their configuration, in the wire
// shape of the Lambda API), Lambda's limits, and validation. It is stdlib-only and imports no other
// Flint package except the error catalogue; it does no I/O.
package lambda

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Limits of classic Lambda.
const (
	MinMemoryMB            = 128
	MaxMemoryMB            = 10240
	DefaultMemoryMB        = 128
	MinTimeoutSec          = 1
	MaxTimeoutSec          = 900
	DefaultTimeoutSec      = 3
	MinEphemeralMB         = 512
	MaxEphemeralMB         = 10240
	MaxEnvBytes            = 4096
	MaxSyncPayload         = 6 * 1024 * 1024
	MaxAsyncPayload        = 1024 * 1024
	MaxZipped              = 50 * 1024 * 1024
	MaxUnzipped            = 250 * 1024 * 1024
	TotalCodeSize          = 80530636800
	MaxDescription         = 256
	MaxHandler             = 128
	MaxFunctionNameLen     = 64
	MaxClientContextBytes  = 3583
	LatestVersion          = "$LATEST"
	TimestampLayout        = "2006-01-02T15:04:05.000-0700"
	DefaultAccountLimit    = 1000
	MinUnreservedExecution = 100
)

// FunctionConfiguration is Lambda's FunctionConfiguration shape, exactly as on the wire.
type FunctionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime,omitempty"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler,omitempty"`
	CodeSize         int64             `json:"CodeSize"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	CodeSha256       string            `json:"CodeSha256"`
	Version          string            `json:"Version"`
	Environment      *EnvironmentResp  `json:"Environment,omitempty"`
	TracingConfig    *TracingConfig    `json:"TracingConfig,omitempty"`
	RevisionId       string            `json:"RevisionId"`
	State            string            `json:"State,omitempty"`
	StateReason      string            `json:"StateReason,omitempty"`
	StateReasonCode  string            `json:"StateReasonCode,omitempty"`
	LastUpdateStatus string            `json:"LastUpdateStatus,omitempty"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage,omitempty"`
	LoggingConfig    *LoggingConfig    `json:"LoggingConfig,omitempty"`
	SnapStart        *SnapStartResp    `json:"SnapStart,omitempty"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	KMSKeyArn        string            `json:"KMSKeyArn,omitempty"`
	Layers           []FunctionLayer   `json:"Layers,omitempty"`
}

// FunctionLayer is a layer as FunctionConfiguration lists it.
type FunctionLayer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

type EnvironmentResp struct {
	Variables map[string]string `json:"Variables"`
	// Order is the variables' names in the order the request sent them (not stored): AWS's
	// size error quotes the variables in that order.
	Order []string `json:"-"`
}
type Environment struct {
	Variables map[string]string `json:"Variables"`
	Order     []string          `json:"-"` // as EnvironmentResp.Order
}

// UnmarshalJSON decodes an Environment and keeps the order of its variables.
func (e *Environment) UnmarshalJSON(b []byte) error {
	var raw struct {
		Variables json.RawMessage `json:"Variables"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Environment{}
	if len(raw.Variables) == 0 || string(raw.Variables) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw.Variables, &e.Variables); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Variables))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if name, ok := k.(string); ok && !slices.Contains(e.Order, name) {
			e.Order = append(e.Order, name)
		}
	}
	return nil
}

type TracingConfig struct {
	Mode string `json:"Mode"`
}
type EphemeralStorage struct {
	Size int `json:"Size"`
}
type LoggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
}
type SnapStartResp struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus"`
}
type DeadLetterConfig struct {
	TargetArn string `json:"TargetArn,omitempty"`
}

// Function is what Flint stores for one function's $LATEST: its configuration plus where its code is.
type Function struct {
	Config FunctionConfiguration `json:"config"`
	// CodeKey is the hex SHA-256 of the zip, the object-store key and unpack-cache key.
	CodeKey string            `json:"code_key"`
	Tags    map[string]string `json:"tags,omitempty"`
	// LastVersion is the number of the newest published version; numbers are never reused.
	LastVersion int `json:"last_version,omitempty"`
	// LayerKeys are the code keys of Config.Layers, in order: a function keeps working with a
	// layer version deleted after it was configured.
	LayerKeys []string `json:"layer_keys,omitempty"`
	// UnzippedSize is the code's unpacked size (layers are counted with it against 250 MB).
	UnzippedSize int64 `json:"unzipped_size,omitempty"`
	// ReservedConcurrency is the function's reservation (nil: none; 0 throttles everything).
	ReservedConcurrency *int `json:"reserved_concurrency,omitempty"`
	// CodeSigningConfigArn is the code signing configuration the function is bound to
	// (PutFunctionCodeSigningConfig; "" for none).
	CodeSigningConfigArn string `json:"code_signing_config_arn,omitempty"`
	// RecursiveLoop is PutFunctionRecursionConfig's setting ("" is Lambda's default, Terminate).
	RecursiveLoop string `json:"recursive_loop,omitempty"`
	// EnvSealed is Config.Environment.Variables encrypted (a crypt.Envelope), as the store keeps
	// them: records read from a watch carry this and no Variables.
	EnvSealed json.RawMessage `json:"env_sealed,omitempty"`
}

// Alias is Lambda's AliasConfiguration, as on the wire.
type Alias struct {
	AliasArn        string              `json:"AliasArn"`
	Name            string              `json:"Name"`
	FunctionVersion string              `json:"FunctionVersion"`
	Description     string              `json:"Description"`
	RoutingConfig   *AliasRoutingConfig `json:"RoutingConfig,omitempty"`
	RevisionId      string              `json:"RevisionId"`
}

// ProvisionedConcurrency is what Flint stores for PutProvisionedConcurrencyConfig.
type ProvisionedConcurrency struct {
	Requested    int    `json:"requested"`
	LastModified string `json:"last_modified"`
}

// EventInvokeConfig is Lambda's FunctionEventInvokeConfig, as on the wire (LastModified is a
// Date: epoch seconds).
type EventInvokeConfig struct {
	LastModified             float64            `json:"LastModified"`
	FunctionArn              string             `json:"FunctionArn"`
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"DestinationConfig,omitempty"`
}

// DestinationConfig names where asynchronous invocation records go.
type DestinationConfig struct {
	OnSuccess *Destination `json:"OnSuccess,omitempty"`
	OnFailure *Destination `json:"OnFailure,omitempty"`
}

// Destination is one destination ARN.
type Destination struct {
	Destination string `json:"Destination,omitempty"`
}

// FunctionURL is what Flint stores for a function URL: its id (the host label) and target.
type FunctionURL struct {
	ID        string            `json:"id"`
	Function  string            `json:"function"`
	Qualifier string            `json:"qualifier"` // "" for $LATEST
	Config    FunctionURLConfig `json:"config"`
}

// FunctionURLConfig is Lambda's FunctionUrlConfig, as on the wire (FunctionUrl is rendered per
// request from the address clients reach Flint at).
type FunctionURLConfig struct {
	FunctionUrl      string `json:"FunctionUrl"`
	FunctionArn      string `json:"FunctionArn"`
	AuthType         string `json:"AuthType"`
	Cors             *Cors  `json:"Cors,omitempty"`
	CreationTime     string `json:"CreationTime"`
	LastModifiedTime string `json:"LastModifiedTime,omitempty"`
	InvokeMode       string `json:"InvokeMode"`
}

// Cors is a function URL's cross-origin settings.
type Cors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

// AliasRoutingConfig sends a share of an alias's invokes to a second version.
type AliasRoutingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
}

// Env returns the function's user variables (nil when none).
func (f *Function) Env() map[string]string {
	if f.Config.Environment == nil {
		return nil
	}
	return f.Config.Environment.Variables
}

// Timeout is the configured timeout as a duration.
func (f *Function) Timeout() time.Duration { return time.Duration(f.Config.Timeout) * time.Second }

// EphemeralMB is the configured /tmp size.
func (f *Function) EphemeralMB() int {
	if f.Config.EphemeralStorage == nil {
		return MinEphemeralMB
	}
	return f.Config.EphemeralStorage.Size
}

// FormatTime renders a time as Lambda's Timestamp strings ("2020-04-10T19:06:32.563+0000").
func FormatTime(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Account identifies the (single) account and region Flint presents itself as.
type Account struct {
	Region string
	ID     string
}

// FunctionARN builds arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER].
func (a Account) FunctionARN(name, qualifier string) string {
	var b strings.Builder
	b.Grow(40 + len(a.Region) + len(name) + len(qualifier))
	b.WriteString("arn:aws:lambda:")
	b.WriteString(a.Region)
	b.WriteByte(':')
	b.WriteString(a.ID)
	b.WriteString(":function:")
	b.WriteString(name)
	if qualifier != "" {
		b.WriteByte(':')
		b.WriteString(qualifier)
	}
	return b.String()
}

// Schedule is an EventBridge Scheduler schedule, as on the wire (dates are epoch seconds).
type Schedule struct {
	Arn                        string              `json:"Arn"`
	Name                       string              `json:"Name"`
	GroupName                  string              `json:"GroupName"`
	ScheduleExpression         string              `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string              `json:"ScheduleExpressionTimezone,omitempty"`
	FlexibleTimeWindow         *FlexibleTimeWindow `json:"FlexibleTimeWindow"`
	Target                     *ScheduleTarget     `json:"Target"`
	State                      string              `json:"State"`
	Description                string              `json:"Description,omitempty"`
	CreationDate               float64             `json:"CreationDate"`
	LastModificationDate       float64             `json:"LastModificationDate"`
	StartDate                  *float64            `json:"StartDate,omitempty"`
	EndDate                    *float64            `json:"EndDate,omitempty"`
	ActionAfterCompletion      string              `json:"ActionAfterCompletion,omitempty"`
}

// FlexibleTimeWindow lets a schedule fire within a window after each occurrence.
type FlexibleTimeWindow struct {
	Mode                   string `json:"Mode"`
	MaximumWindowInMinutes *int   `json:"MaximumWindowInMinutes,omitempty"`
}

// ScheduleTarget is what a schedule invokes.
type ScheduleTarget struct {
	Arn              string               `json:"Arn"`
	RoleArn          string               `json:"RoleArn"`
	Input            string               `json:"Input,omitempty"`
	RetryPolicy      *ScheduleRetryPolicy `json:"RetryPolicy,omitempty"`
	DeadLetterConfig *ScheduleDeadLetter  `json:"DeadLetterConfig,omitempty"`
}

// ScheduleRetryPolicy bounds delivery retries.
type ScheduleRetryPolicy struct {
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
}

// ScheduleDeadLetter is where undeliverable events go.
type ScheduleDeadLetter struct {
	Arn string `json:"Arn,omitempty"`
}

// ScheduleState is what a scheduler remembers about a schedule's firing.
type ScheduleState struct {
	LastFire time.Time `json:"last_fire"`
}

// LayerVersion is Lambda's layer version (GetLayerVersion's shape) plus where its content is.
type LayerVersion struct {
	Content         LayerContent `json:"Content"`
	LayerArn        string       `json:"LayerArn"`
	LayerVersionArn string       `json:"LayerVersionArn"`
	Description     string       `json:"Description"`
	CreatedDate     string       `json:"CreatedDate"`
	Version         int          `json:"Version"`
	// omitzero: a list given empty is answered [] as AWS does, one not given is left out.
	CompatibleRuntimes      []string `json:"CompatibleRuntimes,omitzero"`
	CompatibleArchitectures []string `json:"CompatibleArchitectures,omitzero"`
	LicenseInfo             string   `json:"LicenseInfo,omitempty"`
}

// LayerContent describes a layer version's package.
type LayerContent struct {
	Location   string `json:"Location,omitempty"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

// StoredLayer is how the store keeps a layer version (the wire shape hides the code key).
type StoredLayer struct {
	Layer        LayerVersion `json:"layer"`
	CodeKey      string       `json:"code_key"`
	UnzippedSize int64        `json:"unzipped_size"`
	// Policy is the version's resource-based policy (AddLayerVersionPermission); nil: none. It
	// lives in the version's record, so it goes with the version.
	Policy *StoredPolicy `json:"policy,omitempty"`
}

// CodeSigningConfig is Lambda's CodeSigningConfig, as on the wire.
type CodeSigningConfig struct {
	AllowedPublishers    AllowedPublishers   `json:"AllowedPublishers"`
	CodeSigningConfigArn string              `json:"CodeSigningConfigArn"`
	CodeSigningConfigId  string              `json:"CodeSigningConfigId"`
	CodeSigningPolicies  CodeSigningPolicies `json:"CodeSigningPolicies"`
	Description          string              `json:"Description"`
	LastModified         string              `json:"LastModified"`
}

// AllowedPublishers lists the signing profiles a code signing configuration trusts.
type AllowedPublishers struct {
	SigningProfileVersionArns []string `json:"SigningProfileVersionArns"`
}

// CodeSigningPolicies says what a deployment whose signature fails the checks meets.
type CodeSigningPolicies struct {
	UntrustedArtifactOnDeployment string `json:"UntrustedArtifactOnDeployment"`
}

// EventSourceMapping is Lambda's EventSourceMappingConfiguration as Flint stores and returns it.
type EventSourceMapping struct {
	UUID                           string             `json:"UUID"`
	EventSourceMappingArn          string             `json:"EventSourceMappingArn"`
	EventSourceArn                 string             `json:"EventSourceArn"`
	FunctionArn                    string             `json:"FunctionArn"`
	State                          string             `json:"State"`
	StateTransitionReason          string             `json:"StateTransitionReason"`
	LastModified                   float64            `json:"LastModified"`
	BatchSize                      int                `json:"BatchSize"`
	MaximumBatchingWindowInSeconds int                `json:"MaximumBatchingWindowInSeconds"`
	FunctionResponseTypes          []string           `json:"FunctionResponseTypes,omitempty"`
	ScalingConfig                  *ScalingConfig     `json:"ScalingConfig,omitempty"`
	DestinationConfig              *DestinationConfig `json:"DestinationConfig,omitempty"`
	FilterCriteria                 *FilterCriteria    `json:"FilterCriteria,omitempty"`
	// Stream mappings only (Kinesis-like).
	StartingPosition           string  `json:"StartingPosition,omitempty"`
	StartingPositionTimestamp  float64 `json:"StartingPositionTimestamp,omitempty"`
	ParallelizationFactor      int     `json:"ParallelizationFactor,omitempty"`
	BisectBatchOnFunctionError *bool   `json:"BisectBatchOnFunctionError,omitempty"`
	MaximumRetryAttempts       *int    `json:"MaximumRetryAttempts,omitempty"`
	MaximumRecordAgeInSeconds  *int    `json:"MaximumRecordAgeInSeconds,omitempty"`
	// MaximumReceiveCount is a Flint extension (SQS's redrive policy lives on the queue in AWS):
	// a message received this many times without success goes to DestinationConfig.OnFailure.
	MaximumReceiveCount int `json:"MaximumReceiveCount,omitempty"`
	// VisibilityTimeoutSeconds is a Flint extension: how long a failed message stays invisible
	// before it is received again (SQS's queue visibility timeout).
	VisibilityTimeoutSeconds float64 `json:"VisibilityTimeoutSeconds,omitempty"`
}

// FilterCriteria are a mapping's event filters (package eventfilter): a record is sent to the
// function when one of them matches it.
type FilterCriteria struct {
	Filters []Filter `json:"Filters"`
}

// Filter is one event pattern.
type Filter struct {
	Pattern string `json:"Pattern"`
}

// ScalingConfig bounds a queue mapping's concurrent batches.
type ScalingConfig struct {
	MaximumConcurrency int `json:"MaximumConcurrency,omitempty"`
}

// Event source mapping states.
const (
	ESMCreating  = "Creating"
	ESMEnabling  = "Enabling"
	ESMEnabled   = "Enabled"
	ESMDisabling = "Disabling"
	ESMDisabled  = "Disabled"
	ESMUpdating  = "Updating"
	ESMDeleting  = "Deleting"
)
