package api

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

// maxCodeRequest is the largest CreateFunction/UpdateFunctionCode body AWS accepts (50 MB of zip,
// base64-encoded, plus the rest of the request).
const maxCodeRequest = 69905067

var rolePattern = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)

type functionCode struct {
	ZipFile         []byte `json:"ZipFile"`
	S3Bucket        string `json:"S3Bucket"`
	S3Key           string `json:"S3Key"`
	S3ObjectVersion string `json:"S3ObjectVersion"`
	ImageUri        string `json:"ImageUri"`
}

type createFunctionInput struct {
	FunctionName     string                   `json:"FunctionName"`
	Runtime          string                   `json:"Runtime"`
	Role             *string                  `json:"Role"`
	Handler          string                   `json:"Handler"`
	Code             *functionCode            `json:"Code"`
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
}

func (a *API) createFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	var in createFunctionInput
	if err := decodeBody(r, maxCodeRequest, "CreateFunction", &in); err != nil {
		return err
	}
	name, qualifier, err := a.resolve(r, in.FunctionName)
	if err != nil {
		return err
	}
	if qualifier != "" {
		return apierr.InvalidParameterValue("Unsupported function name: a qualifier is not allowed in CreateFunction.")
	}
	if in.Role == nil {
		return apierr.Validation("1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null")
	}
	if !rolePattern.MatchString(*in.Role) {
		return apierr.Validation("1 validation error detected: Value '%s' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+", *in.Role)
	}
	if in.PackageType == "Image" {
		return apierr.InvalidParameterValue("Flint runs zip packages only; PackageType Image is not supported.")
	}
	if in.PackageType != "" && in.PackageType != "Zip" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'packageType' failed to satisfy constraint: Member must satisfy enum value set: [Image, Zip]", in.PackageType)
	}
	if in.Code == nil {
		return apierr.Validation("1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	layers, layerKeys, layersSize, err := a.resolveLayers(r, in.Layers)
	if err != nil {
		return err
	}
	cfg := lambda.FunctionConfiguration{
		FunctionName:     name,
		FunctionArn:      a.account.FunctionARN(name, ""),
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
		LoggingConfig:    &lambda.LoggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/" + name},
		SnapStart:        &lambda.SnapStartResp{ApplyOn: "None", OptimizationStatus: "Off"},
		DeadLetterConfig: in.DeadLetterConfig,
		KMSKeyArn:        in.KMSKeyArn,
		Layers:           layers,
	}
	if in.Timeout != nil {
		cfg.Timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		cfg.MemorySize = *in.MemorySize
	}
	if in.Environment != nil {
		cfg.Environment = &lambda.EnvironmentResp{Variables: in.Environment.Variables}
	}
	if in.EphemeralStorage != nil {
		cfg.EphemeralStorage = in.EphemeralStorage
	}
	if in.TracingConfig != nil && in.TracingConfig.Mode != "" {
		cfg.TracingConfig = in.TracingConfig
	}
	if in.LoggingConfig != nil {
		if in.LoggingConfig.LogFormat != "" {
			cfg.LoggingConfig.LogFormat = in.LoggingConfig.LogFormat
		}
		if in.LoggingConfig.LogGroup != "" {
			cfg.LoggingConfig.LogGroup = in.LoggingConfig.LogGroup
		}
	}
	if len(in.Architectures) > 0 {
		cfg.Architectures = in.Architectures
	}
	if err := a.validateConfig(&cfg); err != nil {
		return err
	}
	if err := validateTags(in.Tags); err != nil {
		return err
	}
	// Everything that can refuse the request is checked before anything is stored.
	info, err := a.validateCode(in.Code)
	if err != nil {
		return err
	}
	if err := a.checkUnzipped(info.UnzippedSize, layersSize); err != nil {
		return err
	}
	if err := a.checkLayerMerge(r.Context(), in.Layers, layerKeys); err != nil {
		return err
	}
	if _, err := a.store.Functions().Get(r.Context(), name); err == nil {
		return apierr.ResourceConflict("Function already exist: %s", name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	staged, err := a.storeCode(r.Context(), in.Code.ZipFile, info)
	if err != nil {
		return err
	}
	cfg.CodeSha256, cfg.CodeSize = info.CodeSha256, info.Size
	cfg.LastModified = lambda.FormatTime(time.Now())
	cfg.RevisionId = uuid.NewString()
	cfg.State, cfg.LastUpdateStatus = "Active", "Successful"
	f := &lambda.Function{Config: cfg, CodeKey: staged.key, Tags: in.Tags,
		LayerKeys: layerKeys, UnzippedSize: info.UnzippedSize}
	rev, err := a.store.Functions().Create(r.Context(), f)
	if err != nil {
		staged.drop(r.Context())
		if errors.Is(err, store.ErrExists) {
			return apierr.ResourceConflict("Function already exist: %s", name)
		}
		return err
	}
	staged.keep()
	a.await(r, invoke.Functions, rev)
	if in.Publish {
		v, err := a.publish(r, store.Function{Function: f, Revision: rev}, publishVersionInput{})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, v.Config)
	}
	return writeJSON(w, http.StatusCreated, f.Config)
}

// validateConfig checks everything in a configuration that a client can set.
func (a *API) validateConfig(c *lambda.FunctionConfiguration) error {
	if c.Runtime == "" {
		return apierr.InvalidParameterValue("The Runtime parameter must be set for a function of PackageType Zip.")
	}
	if _, ok := runtimes.Lookup(c.Runtime); !ok {
		return apierr.InvalidParameterValue("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: %v or be a valid ARN", c.Runtime, runtimes.Names())
	}
	if err := a.checkRuntime(c); err != nil {
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
		if err := lambda.ValidateEnvironment(c.Environment.Variables); err != nil {
			return err
		}
	}
	if len(c.Architectures) != 1 || (c.Architectures[0] != "x86_64" && c.Architectures[0] != "arm64") {
		return apierr.Validation("1 validation error detected: Value '%v' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]", c.Architectures)
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

func validateTags(tags map[string]string) error {
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 {
			return apierr.InvalidParameterValue("Tag keys must be 1 to 128 characters and values at most 256 characters.")
		}
	}
	return nil
}

// validateCode checks a package without storing anything.
func (a *API) validateCode(code *functionCode) (artifact.Info, error) {
	if code.ImageUri != "" {
		return artifact.Info{}, apierr.InvalidParameterValue("Flint runs zip packages only; ImageUri is not supported.")
	}
	if code.S3Bucket != "" || code.S3Key != "" {
		return artifact.Info{}, apierr.InvalidParameterValue("Flint accepts code as ZipFile only; S3Bucket/S3Key are not supported.")
	}
	if code.ZipFile == nil {
		return artifact.Info{}, apierr.InvalidParameterValue("Please provide a source for function code.")
	}
	info, err := artifact.Validate(code.ZipFile, a.limits)
	switch {
	case errors.Is(err, artifact.ErrZippedTooLarge):
		return info, apierr.RequestEntityTooLarge("Zipped size must be smaller than %d bytes", a.limits.MaxZipped)
	case errors.Is(err, artifact.ErrUnzippedTooLarge):
		return info, apierr.InvalidParameterValue("Unzipped size must be smaller than %d bytes", a.limits.MaxUnzipped)
	case errors.Is(err, artifact.ErrUnsafePath), errors.Is(err, artifact.ErrUnsafeSymlink):
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again. (%v)", err)
	case errors.Is(err, artifact.ErrTooManyFiles):
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file: %v", err)
	case err != nil:
		return info, apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	return info, nil
}

// checkUnzipped applies Lambda's 250 MB limit to a function's code and layers together.
func (a *API) checkUnzipped(code, layers int64) error {
	if code+layers > a.limits.MaxUnzipped {
		return apierr.InvalidParameterValue("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.", a.limits.MaxUnzipped, code+layers)
	}
	return nil
}

// lookup reads a function for the control plane; only $LATEST exists until versions land.
func (a *API) lookup(r *http.Request) (store.Function, error) {
	name, qualifier, err := a.functionName(r)
	if err != nil {
		return store.Function{}, err
	}
	if qualifier != "" && qualifier != lambda.LatestVersion {
		return store.Function{}, a.notFound(name, qualifier)
	}
	f, err := a.store.Functions().Get(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Function{}, a.notFound(name, "")
	}
	return f, err
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookupQualified(r)
	if err != nil {
		return err
	}
	out := struct {
		Configuration lambda.FunctionConfiguration `json:"Configuration"`
		Code          struct {
			RepositoryType string `json:"RepositoryType"`
			Location       string `json:"Location"`
		} `json:"Code"`
		Tags        map[string]string `json:"Tags,omitempty"`
		Concurrency *concurrency      `json:"Concurrency,omitempty"`
	}{Configuration: f.Config, Tags: f.Tags}
	if f.ReservedConcurrency != nil {
		out.Concurrency = &concurrency{ReservedConcurrentExecutions: f.ReservedConcurrency}
	}
	out.Code.RepositoryType = "S3"
	out.Code.Location = a.link(r, "/flint/v1/functions/"+f.Config.FunctionName+"/code")
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookupQualified(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f.Config)
}

func (a *API) functionCode(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	b, err := a.store.Code().Get(r.Context(), f.CodeKey)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return nil
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return apierr.Validation("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", s)
		}
		maxItems = min(n, 50)
	}
	if v := q.Get("FunctionVersion"); v != "" && v != "ALL" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]", v)
	}
	all, err := a.store.Functions().List(r.Context())
	if err != nil {
		return err
	}
	marker := q.Get("Marker")
	out := struct {
		Functions  []lambda.FunctionConfiguration `json:"Functions"`
		NextMarker string                         `json:"NextMarker,omitempty"`
	}{Functions: []lambda.FunctionConfiguration{}}
	for _, f := range all {
		if marker != "" && f.Config.FunctionName <= marker {
			continue
		}
		if len(out.Functions) == maxItems {
			out.NextMarker = out.Functions[len(out.Functions)-1].FunctionName
			break
		}
		c := f.Config
		// ListFunctions leaves out the state fields (the model's documented subset).
		c.State, c.StateReason, c.StateReasonCode, c.LastUpdateStatus = "", "", "", ""
		out.Functions = append(out.Functions, c)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	name, qualifier, err := a.functionName(r)
	if err != nil {
		return err
	}
	if qualifier == lambda.LatestVersion {
		return apierr.InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.")
	}
	if qualifier != "" {
		err := a.deleteVersion(w, r, name, qualifier)
		if err == nil {
			a.gc.wake() // the version's code may be referenced by nothing now
		}
		return err
	}
	rev, err := a.store.Functions().Delete(r.Context(), name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return a.notFound(name, "")
		}
		return err
	}
	a.await(r, invoke.Functions, rev)
	a.gc.wake()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type updateCodeInput struct {
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

func (a *API) updateFunctionCode(w http.ResponseWriter, r *http.Request, _ string) error {
	var in updateCodeInput
	if err := decodeBody(r, maxCodeRequest, "UpdateFunctionCode", &in); err != nil {
		return err
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	code := &functionCode{ZipFile: in.ZipFile, S3Bucket: in.S3Bucket, S3Key: in.S3Key, ImageUri: in.ImageUri}
	if in.DryRun {
		if code.ZipFile == nil {
			return apierr.InvalidParameterValue("Please provide a source for function code.")
		}
		info, err := artifact.Validate(code.ZipFile, a.limits)
		if err != nil {
			return apierr.InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.")
		}
		c := f.Config
		c.CodeSha256, c.CodeSize = info.CodeSha256, info.Size
		return writeJSON(w, http.StatusOK, c)
	}
	// Refuse what the update would refuse before storing anything.
	info, err := a.validateCode(code)
	if err != nil {
		return err
	}
	if in.RevisionId != "" && in.RevisionId != f.Config.RevisionId {
		return apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	if len(in.Architectures) > 0 {
		c := f.Config
		c.Architectures = in.Architectures
		if err := a.validateConfig(&c); err != nil {
			return err
		}
	}
	staged, err := a.storeCode(r.Context(), code.ZipFile, info)
	if err != nil {
		return err
	}
	upd := a.update
	if in.Publish {
		upd = a.updateAndPublish
	}
	err = upd(w, r, f, in.RevisionId, func(fn *lambda.Function) error {
		if len(in.Architectures) > 0 {
			fn.Config.Architectures = in.Architectures
		}
		fn.Config.CodeSha256, fn.Config.CodeSize = info.CodeSha256, info.Size
		fn.CodeKey, fn.UnzippedSize = staged.key, info.UnzippedSize
		return a.validateConfig(&fn.Config)
	})
	if err != nil {
		// Refused (a concurrent update, the function deleted) or failed after the record was
		// written: drop removes the code only if nothing references it.
		staged.drop(r.Context())
		return err
	}
	staged.keep()
	a.gc.wake() // the code it replaced may be referenced by nothing now
	return nil
}

type updateConfigInput struct {
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

func (a *API) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ string) error {
	var in updateConfigInput
	if err := decodeBody(r, 1<<20, "UpdateFunctionConfiguration", &in); err != nil {
		return err
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	var (
		layers     []lambda.FunctionLayer
		layerKeys  []string
		layersSize int64
	)
	if in.Layers != nil {
		if layers, layerKeys, layersSize, err = a.resolveLayers(r, in.Layers); err != nil {
			return err
		}
		if err := a.checkUnzipped(f.UnzippedSize, layersSize); err != nil {
			return err
		}
		if err := a.checkLayerMerge(r.Context(), in.Layers, layerKeys); err != nil {
			return err
		}
	}
	if in.Role != nil && !rolePattern.MatchString(*in.Role) {
		return apierr.Validation("1 validation error detected: Value '%s' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+", *in.Role)
	}
	defer func() {
		if in.Layers != nil {
			a.gc.wake() // the merged directory of the layers it had may be referenced by nothing now
		}
	}()
	return a.update(w, r, f, in.RevisionId, func(fn *lambda.Function) error {
		c := &fn.Config
		set(&c.Role, in.Role)
		set(&c.Handler, in.Handler)
		set(&c.Description, in.Description)
		set(&c.Timeout, in.Timeout)
		set(&c.MemorySize, in.MemorySize)
		set(&c.Runtime, in.Runtime)
		set(&c.KMSKeyArn, in.KMSKeyArn)
		if in.Environment != nil {
			c.Environment = &lambda.EnvironmentResp{Variables: in.Environment.Variables}
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
		if in.LoggingConfig != nil && in.LoggingConfig.LogFormat != "" {
			c.LoggingConfig.LogFormat = in.LoggingConfig.LogFormat
		}
		if in.DeadLetterConfig != nil {
			c.DeadLetterConfig = in.DeadLetterConfig
		}
		if in.Layers != nil {
			c.Layers, fn.LayerKeys = layers, layerKeys
		}
		return a.validateConfig(c)
	})
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// update applies change to the function and stores it with optimistic locking: a RevisionId
// from the client must match; without one, a concurrent writer makes us re-read and retry.
func (a *API) update(w http.ResponseWriter, r *http.Request, f store.Function, revisionID string, change func(*lambda.Function) error) error {
	next, _, err := a.apply(r, f, revisionID, change)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, next.Config)
}

// apply changes $LATEST and stores it, returning the stored function and its revision.
func (a *API) apply(r *http.Request, f store.Function, revisionID string, change func(*lambda.Function) error) (*lambda.Function, uint64, error) {
	for attempt := 0; ; attempt++ {
		if revisionID != "" && revisionID != f.Config.RevisionId {
			return nil, 0, apierr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
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
		rev, err := a.store.Functions().Update(r.Context(), &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = a.store.Functions().Get(r.Context(), f.Config.FunctionName); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil, 0, a.notFound(next.Config.FunctionName, "")
				}
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		a.await(r, invoke.Functions, rev)
		return &next, rev, nil
	}
}

// updateAndPublish is update followed by PublishVersion (UpdateFunctionCode's Publish flag); the
// response is the new version's configuration.
func (a *API) updateAndPublish(w http.ResponseWriter, r *http.Request, f store.Function, revisionID string, change func(*lambda.Function) error) error {
	next, rev, err := a.apply(r, f, revisionID, change)
	if err != nil {
		return err
	}
	v, err := a.publish(r, store.Function{Function: next, Revision: rev}, publishVersionInput{})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v.Config)
}

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

func (a *API) getAccountSettings(w http.ResponseWriter, r *http.Request, _ string) error {
	all, err := a.store.Functions().List(r.Context())
	if err != nil {
		return err
	}
	var total int64
	reserved := 0
	for _, f := range all {
		total += f.Config.CodeSize
		if f.ReservedConcurrency != nil {
			reserved += *f.ReservedConcurrency
		}
	}
	type limit struct {
		TotalCodeSize                  int64 `json:"TotalCodeSize"`
		CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
		CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
		ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
		UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
	}
	type usage struct {
		TotalCodeSize int64 `json:"TotalCodeSize"`
		FunctionCount int   `json:"FunctionCount"`
	}
	return writeJSON(w, http.StatusOK, struct {
		AccountLimit limit `json:"AccountLimit"`
		AccountUsage usage `json:"AccountUsage"`
	}{
		limit{lambda.TotalCodeSize, a.limits.MaxUnzipped, a.limits.MaxZipped, a.invoke.AccountLimit(), a.invoke.AccountLimit() - reserved},
		usage{total, len(all)},
	})
}

func (a *API) functionLogs(w http.ResponseWriter, r *http.Request, _ string) error {
	name, _, err := a.functionName(r)
	if err != nil {
		return err
	}
	if _, err := a.store.Functions().Get(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		return a.notFound(name, "")
	} else if err != nil {
		return err
	}
	a.logs.WriteHTTP(w, r, name)
	return nil
}
