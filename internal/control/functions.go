package control

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

// functionStore is the functions' repository (store.Functions).
type functionStore interface {
	functionReader
	functionLister
	// Page returns up to n functions after the name after, by name, and whether more follow.
	Page(ctx context.Context, after string, n int) ([]*lambda.Function, bool, error)
	Create(ctx context.Context, f *lambda.Function) (uint64, error)
	Update(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error)
	Delete(ctx context.Context, name string) (uint64, error)
}

// layerVersionReader reads layer versions (store.Layers): a function's Layers must exist.
type layerVersionReader interface {
	Get(ctx context.Context, name string, n int) (*lambda.StoredLayer, error)
}

// runtimeTable is this node's interpreter per runtime (runtimes.Table).
type runtimeTable interface {
	Check(runtime string) error
	Lookup(runtime string) (runtimes.Interpreter, bool)
}

// accountLimit gives the account's concurrency limit (invoke.Service).
type accountLimit interface {
	AccountLimit() int
}

// Functions serves CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
// DeleteFunction, UpdateFunctionCode, UpdateFunctionConfiguration and GetAccountSettings, and
// Flint's own code download and logs lookups.
type Functions struct {
	resolver
	awaiter
	functions functionStore
	layers    layerVersionReader
	code      *Code
	versions  *Versions // PublishVersion, for Publish flags and DeleteFunction of a version
	runtimes  runtimeTable
	limit     accountLimit
	signing   signingGate // refuses deployments a code signing configuration enforces
}

// FunctionInput is CreateFunction's request body.
type FunctionInput struct {
	FunctionName     string                   `json:"FunctionName"`
	Runtime          string                   `json:"Runtime"`
	Role             *string                  `json:"Role"`
	Handler          string                   `json:"Handler"`
	Code             *CodeInput               `json:"Code"`
	Description      string                   `json:"Description"`
	Timeout          *int                     `json:"Timeout"`
	MemorySize       *int                     `json:"MemorySize"`
	Publish          bool                     `json:"Publish"`
	PackageType      string                   `json:"PackageType"`
	Environment      *lambda.Environment      `json:"Environment"`
	Architectures    []string                 `json:"Architectures"`
	EphemeralStorage *lambda.EphemeralStorage `json:"EphemeralStorage"`
	TracingConfig    *lambda.TracingConfig    `json:"TracingConfig"`
	LoggingConfig    *lambda.LoggingConfig    `json:"LoggingConfig"`
	DeadLetterConfig *lambda.DeadLetterConfig `json:"DeadLetterConfig"`
	KMSKeyArn        string                   `json:"KMSKeyArn"`
	Tags             map[string]string        `json:"Tags"`
	Layers           []string                 `json:"Layers"`
	// CodeSigningConfigArn binds the new function to a code signing configuration.
	CodeSigningConfigArn string `json:"CodeSigningConfigArn"`
}

// CodeUpdate is UpdateFunctionCode's request body.
type CodeUpdate struct {
	ZipFile         []byte   `json:"ZipFile"`
	S3Bucket        string   `json:"S3Bucket"`
	S3Key           string   `json:"S3Key"`
	S3ObjectVersion string   `json:"S3ObjectVersion"`
	ImageUri        string   `json:"ImageUri"`
	Publish         bool     `json:"Publish"`
	DryRun          bool     `json:"DryRun"`
	RevisionId      string   `json:"RevisionId"`
	Architectures   []string `json:"Architectures"`
}

// ConfigUpdate is UpdateFunctionConfiguration's request body.
type ConfigUpdate struct {
	Role             *string                  `json:"Role"`
	Handler          *string                  `json:"Handler"`
	Description      *string                  `json:"Description"`
	Timeout          *int                     `json:"Timeout"`
	MemorySize       *int                     `json:"MemorySize"`
	Environment      *lambda.Environment      `json:"Environment"`
	Runtime          *string                  `json:"Runtime"`
	EphemeralStorage *lambda.EphemeralStorage `json:"EphemeralStorage"`
	TracingConfig    *lambda.TracingConfig    `json:"TracingConfig"`
	LoggingConfig    *lambda.LoggingConfig    `json:"LoggingConfig"`
	DeadLetterConfig *lambda.DeadLetterConfig `json:"DeadLetterConfig"`
	KMSKeyArn        *string                  `json:"KMSKeyArn"`
	Layers           []string                 `json:"Layers"`
	RevisionId       string                   `json:"RevisionId"`
}

// FunctionList is ListFunctions's answer.
type FunctionList struct {
	Functions  []lambda.FunctionConfiguration `json:"Functions"`
	NextMarker string                         `json:"NextMarker,omitempty"`
}

// AccountSettings is GetAccountSettings's answer.
type AccountSettings struct {
	AccountLimit AccountLimit `json:"AccountLimit"`
	AccountUsage AccountUsage `json:"AccountUsage"`
}

// AccountLimit is the account's limits, as GetAccountSettings gives them.
type AccountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
}

// AccountUsage is what the account's functions use, as GetAccountSettings gives it.
type AccountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int   `json:"FunctionCount"`
}

func preconditionFailed() error {
	return apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
}

// Create stores a new function (and publishes its version 1 when in.Publish says so). It returns
// the configuration stored: $LATEST's, or the new version's.
func (s *Functions) Create(ctx context.Context, in FunctionInput) (*lambda.FunctionConfiguration, error) {
	name, qualifier, err := s.name(Target{Op: "CreateFunction", Name: in.FunctionName})
	if err != nil {
		return nil, err
	}
	if qualifier != "" {
		return nil, apierr.InvalidParameterValue("Unsupported function name: a qualifier is not allowed in CreateFunction.")
	}
	if in.Role == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null")
	}
	if !rolePattern().MatchString(*in.Role) {
		return nil, badRole(*in.Role)
	}
	if in.PackageType == "Image" {
		return nil, apierr.InvalidParameterValue("Flint runs zip packages only; PackageType Image is not supported.")
	}
	if in.PackageType != "" && in.PackageType != "Zip" {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'packageType' failed to satisfy constraint: Member must satisfy enum value set: [Image, Zip]", in.PackageType)
	}
	if in.Code == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	layers, layerKeys, layersSize, err := s.resolveLayers(ctx, in.Layers)
	if err != nil {
		return nil, err
	}
	cfg := lambda.FunctionConfiguration{
		FunctionName:     name,
		FunctionArn:      s.account.FunctionARN(name, ""),
		Runtime:          in.Runtime,
		Role:             *in.Role,
		Handler:          in.Handler,
		Description:      in.Description,
		Timeout:          lambda.DefaultTimeoutSec,
		MemorySize:       lambda.DefaultMemoryMB,
		Version:          lambda.LatestVersion,
		PackageType:      "Zip",
		Architectures:    []string{"x86_64"},
		EphemeralStorage: &lambda.EphemeralStorage{Size: lambda.MinEphemeralMB},
		TracingConfig:    &lambda.TracingConfig{Mode: "PassThrough"},
		SnapStart:        &lambda.SnapStartResp{ApplyOn: "None", OptimizationStatus: "Off"},
		DeadLetterConfig: in.DeadLetterConfig,
		KMSKeyArn:        in.KMSKeyArn,
		Layers:           layers,
	}
	set(&cfg.Timeout, in.Timeout)
	set(&cfg.MemorySize, in.MemorySize)
	if in.Environment != nil {
		cfg.Environment = &lambda.EnvironmentResp{Variables: in.Environment.Variables, Order: in.Environment.Order}
	}
	if in.EphemeralStorage != nil {
		cfg.EphemeralStorage = in.EphemeralStorage
	}
	if in.TracingConfig != nil && in.TracingConfig.Mode != "" {
		cfg.TracingConfig = in.TracingConfig
	}
	if cfg.LoggingConfig, err = loggingConfig(name, nil, in.LoggingConfig); err != nil {
		return nil, err
	}
	if len(in.Architectures) > 0 {
		cfg.Architectures = in.Architectures
	}
	if err := s.validateConfig(&cfg); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := s.signing.create(ctx, in.CodeSigningConfigArn); err != nil {
		return nil, err
	}
	// Everything that can refuse the request is checked before anything is stored.
	info, err := s.code.Validate(in.Code)
	if err != nil {
		return nil, err
	}
	if err := s.code.checkUnzipped(info.UnzippedSize, layersSize); err != nil {
		return nil, err
	}
	if err := s.checkLayerMerge(ctx, in.Layers, layerKeys); err != nil {
		return nil, err
	}
	if _, err := s.functions.Get(ctx, name); err == nil {
		return nil, apierr.ResourceConflict("Function already exist: %s", name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	staged, err := s.code.Stage(ctx, in.Code.ZipFile, info)
	if err != nil {
		return nil, err
	}
	cfg.CodeSha256, cfg.CodeSize = info.CodeSha256, info.Size
	cfg.LastModified = lambda.FormatTime(time.Now())
	cfg.RevisionId = uuid.NewString()
	cfg.State, cfg.LastUpdateStatus = "Active", "Successful"
	f := &lambda.Function{Config: cfg, CodeKey: staged.Key(), Tags: in.Tags,
		LayerKeys: layerKeys, UnzippedSize: info.UnzippedSize, CodeSigningConfigArn: in.CodeSigningConfigArn}
	rev, err := s.functions.Create(ctx, f)
	if err != nil {
		staged.Drop(ctx)
		if errors.Is(err, store.ErrExists) {
			return nil, apierr.ResourceConflict("Function already exist: %s", name)
		}
		return nil, err
	}
	staged.Keep()
	s.await(ctx, invoke.Functions, rev)
	if in.Publish {
		v, err := s.versions.publish(ctx, store.Function{Function: f, Revision: rev}, PublishInput{})
		if err != nil {
			return nil, err
		}
		// AWS answers version 1's configuration under the function's unqualified ARN.
		c := v.Config
		c.FunctionArn = f.Config.FunctionArn
		return &c, nil
	}
	return &f.Config, nil
}

// Get returns the function t names: $LATEST, a published version, or the version an alias
// points to (GetFunction, GetFunctionConfiguration).
func (s *Functions) Get(ctx context.Context, t Target) (*lambda.Function, error) {
	f, err := s.qualified(ctx, t)
	if err != nil {
		return nil, err
	}
	// AWS names what was asked for: fn:$LATEST for $LATEST, the alias's ARN for an alias.
	if name, q, _ := s.name(t); q != "" {
		c := *f
		c.Config.FunctionArn = s.account.FunctionARN(name, q)
		return &c, nil
	}
	return f, nil
}

// Package returns the code package of the function t names ($LATEST only).
func (s *Functions) Package(ctx context.Context, t Target) ([]byte, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	return s.code.Package(ctx, f.CodeKey)
}

// Logs returns the name of the function whose logs t asks for, once it is known to exist; a
// qualifier is checked, then ignored: a function's versions share its logs.
func (s *Functions) Logs(ctx context.Context, t Target) (string, error) {
	name, _, err := s.name(t)
	if err != nil {
		return "", err
	}
	if _, err := s.functions.Get(ctx, name); errors.Is(err, store.ErrNotFound) {
		return "", s.notFound(name, "")
	} else if err != nil {
		return "", err
	}
	return name, nil
}

// List returns a page of the functions by name; version, when given, must be ALL, which lists
// every function's $LATEST and published versions (listAll).
func (s *Functions) List(ctx context.Context, version string, p Page) (*FunctionList, error) {
	if version != "" && version != "ALL" {
		return nil, apierr.Validation("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]", version)
	}
	if version == "ALL" {
		return s.listAll(ctx, p)
	}
	// One page's records, not every function's: paging through N functions reads each once.
	page, more, err := s.functions.Page(ctx, p.Marker, p.MaxItems)
	if err != nil {
		return nil, err
	}
	out := &FunctionList{Functions: make([]lambda.FunctionConfiguration, 0, len(page))}
	for _, f := range page {
		c := f.Config
		// ListFunctions leaves out the state fields (the model's documented subset).
		c.State, c.StateReason, c.StateReasonCode, c.LastUpdateStatus = "", "", "", ""
		out.Functions = append(out.Functions, c)
	}
	if more && len(out.Functions) > 0 {
		out.NextMarker = out.Functions[len(out.Functions)-1].FunctionName
	}
	return out, nil
}

// listAll is ListFunctions with FunctionVersion=ALL: each function's $LATEST (its ARN
// qualified with $LATEST, as AWS shows it) and then its published versions, by name and
// version. The marker is the last entry's NAME:VERSION.
func (s *Functions) listAll(ctx context.Context, p Page) (*FunctionList, error) {
	fns, err := s.functions.List(ctx)
	if err != nil {
		return nil, err
	}
	vs, err := s.versions.versions.All(ctx)
	if err != nil {
		return nil, err
	}
	type entry struct {
		name string
		n    int // 0 for $LATEST
		c    lambda.FunctionConfiguration
	}
	all := make([]entry, 0, len(fns)+len(vs))
	for _, f := range fns {
		c := f.Config
		c.FunctionArn = s.account.FunctionARN(c.FunctionName, lambda.LatestVersion)
		all = append(all, entry{c.FunctionName, 0, c})
	}
	for _, v := range vs {
		n, err := strconv.Atoi(v.Config.Version)
		if err != nil {
			continue
		}
		all = append(all, entry{v.Config.FunctionName, n, v.Config})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return a.n - b.n
	})
	var after *entry
	if p.Marker != "" {
		name, ver, _ := strings.Cut(p.Marker, ":")
		n, _ := strconv.Atoi(ver) // $LATEST: 0
		after = &entry{name: name, n: n}
	}
	out := &FunctionList{Functions: []lambda.FunctionConfiguration{}}
	for _, e := range all {
		if after != nil && (e.name < after.name || e.name == after.name && e.n <= after.n) {
			continue
		}
		if len(out.Functions) == p.MaxItems {
			last := out.Functions[len(out.Functions)-1]
			out.NextMarker = last.FunctionName + ":" + last.Version
			break
		}
		c := e.c
		c.State, c.StateReason, c.StateReasonCode, c.LastUpdateStatus = "", "", "", ""
		out.Functions = append(out.Functions, c)
	}
	return out, nil
}

// Delete removes the function t names with its versions, or only the version its qualifier
// names.
func (s *Functions) Delete(ctx context.Context, t Target) error {
	name, qualifier, err := s.name(t)
	if err != nil {
		return err
	}
	if qualifier == lambda.LatestVersion {
		return apierr.InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.")
	}
	if qualifier != "" {
		err := s.versions.delete(ctx, name, qualifier)
		if err == nil {
			s.code.Wake() // the version's code may be referenced by nothing now
		}
		return err
	}
	rev, err := s.functions.Delete(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.notFound(name, "")
		}
		return err
	}
	s.await(ctx, invoke.Functions, rev)
	s.code.Wake()
	return nil
}

// UpdateCode replaces the function's code (UpdateFunctionCode), or with in.DryRun only checks
// the package and answers the configuration the update would give. With in.Publish it then
// publishes a version and returns that version's configuration.
func (s *Functions) UpdateCode(ctx context.Context, t Target, in CodeUpdate) (*lambda.FunctionConfiguration, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	code := &CodeInput{ZipFile: in.ZipFile, S3Bucket: in.S3Bucket, S3Key: in.S3Key, ImageUri: in.ImageUri}
	if in.DryRun {
		if code.ZipFile == nil {
			return nil, apierr.InvalidParameterValue("Please provide a source for function code.")
		}
		info, err := artifact.Validate(code.ZipFile, s.code.limits)
		if err != nil {
			return nil, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.")
		}
		if err := s.signing.check(ctx, f.CodeSigningConfigArn); err != nil {
			return nil, err
		}
		c := f.Config
		c.CodeSha256, c.CodeSize = info.CodeSha256, info.Size
		return &c, nil
	}
	// Refuse what the update would refuse before storing anything.
	info, err := s.code.Validate(code)
	if err != nil {
		return nil, err
	}
	if in.RevisionId != "" && in.RevisionId != f.Config.RevisionId {
		return nil, preconditionFailed()
	}
	if err := s.signing.check(ctx, f.CodeSigningConfigArn); err != nil {
		return nil, err
	}
	if len(in.Architectures) > 0 {
		c := f.Config
		c.Architectures = in.Architectures
		if err := s.validateConfig(&c); err != nil {
			return nil, err
		}
	}
	staged, err := s.code.Stage(ctx, code.ZipFile, info)
	if err != nil {
		return nil, err
	}
	out, err := func() (*lambda.FunctionConfiguration, error) {
		next, rev, err := s.apply(ctx, f, in.RevisionId, func(fn *lambda.Function) error {
			if len(in.Architectures) > 0 {
				fn.Config.Architectures = in.Architectures
			}
			fn.Config.CodeSha256, fn.Config.CodeSize = info.CodeSha256, info.Size
			fn.CodeKey, fn.UnzippedSize = staged.Key(), info.UnzippedSize
			return s.validateConfig(&fn.Config)
		})
		if err != nil || !in.Publish {
			return configOf(next), err
		}
		v, err := s.versions.publish(ctx, store.Function{Function: next, Revision: rev}, PublishInput{})
		return configOf(v), err
	}()
	if err != nil {
		// Refused (a concurrent update, the function deleted) or failed after the record was
		// written: Drop removes the code only if nothing references it.
		staged.Drop(ctx)
		return nil, err
	}
	staged.Keep()
	s.code.Wake() // the code it replaced may be referenced by nothing now
	return out, nil
}

func configOf(f *lambda.Function) *lambda.FunctionConfiguration {
	if f == nil {
		return nil
	}
	return &f.Config
}

// UpdateConfiguration changes the function's configuration (UpdateFunctionConfiguration).
func (s *Functions) UpdateConfiguration(ctx context.Context, t Target, in ConfigUpdate) (*lambda.FunctionConfiguration, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	var (
		layers     []lambda.FunctionLayer
		layerKeys  []string
		layersSize int64
	)
	if in.Layers != nil {
		if layers, layerKeys, layersSize, err = s.resolveLayers(ctx, in.Layers); err != nil {
			return nil, err
		}
		if err := s.code.checkUnzipped(f.UnzippedSize, layersSize); err != nil {
			return nil, err
		}
		if err := s.checkLayerMerge(ctx, in.Layers, layerKeys); err != nil {
			return nil, err
		}
	}
	if in.Role != nil && !rolePattern().MatchString(*in.Role) {
		return nil, badRole(*in.Role)
	}
	if len(in.Layers) > 0 {
		// AWS verifies the layers' signatures too.
		if err := s.signing.check(ctx, f.CodeSigningConfigArn); err != nil {
			return nil, err
		}
	}
	if in.Layers != nil {
		// The merged directory of the layers it had may be referenced by nothing now (or, if
		// the update is refused, the layers' directory merged for the check above).
		defer s.code.Wake()
	}
	next, _, err := s.apply(ctx, f, in.RevisionId, func(fn *lambda.Function) error {
		c := &fn.Config
		set(&c.Role, in.Role)
		set(&c.Handler, in.Handler)
		set(&c.Description, in.Description)
		set(&c.Timeout, in.Timeout)
		set(&c.MemorySize, in.MemorySize)
		set(&c.Runtime, in.Runtime)
		set(&c.KMSKeyArn, in.KMSKeyArn)
		if in.Environment != nil {
			c.Environment = &lambda.EnvironmentResp{Variables: in.Environment.Variables, Order: in.Environment.Order}
			if len(in.Environment.Variables) == 0 {
				c.Environment = nil
			}
		}
		if in.EphemeralStorage != nil {
			c.EphemeralStorage = in.EphemeralStorage
		}
		if in.TracingConfig != nil && in.TracingConfig.Mode != "" {
			c.TracingConfig = in.TracingConfig
		}
		lc, err := loggingConfig(c.FunctionName, c.LoggingConfig, in.LoggingConfig)
		if err != nil {
			return err
		}
		c.LoggingConfig = lc
		if in.DeadLetterConfig != nil {
			c.DeadLetterConfig = in.DeadLetterConfig
		}
		if in.Layers != nil {
			c.Layers, fn.LayerKeys = layers, layerKeys
		}
		return s.validateConfig(c)
	})
	if err != nil {
		return nil, err
	}
	return &next.Config, nil
}

// apply changes $LATEST and stores it with optimistic locking: a RevisionId from the client
// must match; without one, a concurrent writer makes it re-read and retry. It returns the
// stored function and its revision, once the invocation view holds it.
func (s *Functions) apply(ctx context.Context, f store.Function, revisionID string, change func(*lambda.Function) error) (*lambda.Function, uint64, error) {
	for attempt := 0; ; attempt++ {
		if revisionID != "" && revisionID != f.Config.RevisionId {
			return nil, 0, preconditionFailed()
		}
		next := *f.Function
		next.Config.Environment = cloneEnv(f.Config.Environment)
		if f.Config.LoggingConfig != nil {
			lc := *f.Config.LoggingConfig
			next.Config.LoggingConfig = &lc
		}
		if err := change(&next); err != nil {
			return nil, 0, err
		}
		next.Config.LastModified = lambda.FormatTime(time.Now())
		next.Config.RevisionId = uuid.NewString()
		next.Config.State, next.Config.LastUpdateStatus = "Active", "Successful"
		rev, err := s.functions.Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = s.functions.Get(ctx, f.Config.FunctionName); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil, 0, s.notFound(next.Config.FunctionName, "")
				}
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		s.await(ctx, invoke.Functions, rev)
		return &next, rev, nil
	}
}

// cloneEnv copies the variables, so that a change to a copy of a function leaves the one it
// was copied from (maybe the view's) alone.
func cloneEnv(e *lambda.EnvironmentResp) *lambda.EnvironmentResp {
	if e == nil {
		return nil
	}
	vars := make(map[string]string, len(e.Variables))
	for k, v := range e.Variables {
		vars[k] = v
	}
	return &lambda.EnvironmentResp{Variables: vars}
}

// AccountSettings is GetAccountSettings: the account's limits and what its functions use.
func (s *Functions) AccountSettings(ctx context.Context) (*AccountSettings, error) {
	all, err := s.functions.List(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	reserved := 0
	for _, f := range all {
		total += f.Config.CodeSize
		if f.ReservedConcurrency != nil {
			reserved += *f.ReservedConcurrency
		}
	}
	limit := s.limit.AccountLimit()
	return &AccountSettings{
		AccountLimit: AccountLimit{lambda.TotalCodeSize, s.code.limits.MaxUnzipped, s.code.limits.MaxZipped, limit, limit - reserved},
		AccountUsage: AccountUsage{total, len(all)},
	}, nil
}
