package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/flint-run/flint/internal/build"
)

const (
	// StackTag is the tag that marks a function as created by a stack (its value is the name).
	StackTag = "flint:stack"
	// defaultRole is the execution role of the functions and schedules a stack creates.
	defaultRole = "arn:aws:iam::000000000000:role/flint"
	// waitTimeout bounds the wait for a function to become Active or finish an update.
	waitTimeout = 5 * time.Minute
)

// Deployer deploys stacks through Flint's public APIs.
type Deployer struct {
	Lambda    *lambda.Client
	Scheduler *scheduler.Client
	// MetricsURL is Flint's /metrics, read during gradual rollouts.
	MetricsURL string
	// HTTP fetches MetricsURL; it must have a timeout.
	HTTP *http.Client
	// Out receives progress, one line per action.
	Out io.Writer
}

// Options tune a deployment.
type Options struct {
	// Prune deletes functions tagged with the stack's name that the file no longer has.
	Prune bool
	// StepInterval, when positive, replaces every gradual deployment's step interval.
	StepInterval time.Duration
	// MaxErrorRate is the new version's highest tolerated error rate over a step (0: any error
	// rolls back).
	MaxErrorRate float64
	// Build tunes source builds.
	Build build.Options
}

// Change is one thing a deployment changed.
type Change struct {
	Kind     string `json:"kind"`     // function, layer, alias, url, schedule
	Name     string `json:"name"`     // the function's or layer's name
	Action   string `json:"action"`   // created, updated, deleted, published, shifted, rolled back …
	Detail   string `json:"detail"`   // e.g. "code, configuration" or "v2 → v3"
	Resource string `json:"resource"` // e.g. the alias, schedule or URL affected
}

// Result is what Deploy did.
type Result struct {
	Stack   string   `json:"stack"`
	Changes []Change `json:"changes"`
	// Unpruned lists stack functions no longer in the file, kept because Prune was not set.
	Unpruned []string `json:"unpruned,omitempty"`
}

// RollbackError means a gradual deployment's new version failed and its alias was moved back.
type RollbackError struct {
	Function, Alias string
	Old, New        string
	Errors, Total   float64
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("function %s: version %s failed %v of %v invocations during the rollout; alias %s rolled back to version %s",
		e.Function, e.New, e.Errors, e.Total, e.Alias, e.Old)
}

// artifact is a built package.
type artifact struct {
	zip    []byte
	sha    string
	size   int64
	result *build.Result // nil for a ready package
}

// Deploy brings Flint to the state st describes. It returns what changed, also when it fails
// part way (a *RollbackError included).
func (d *Deployer) Deploy(ctx context.Context, st *Stack, opts Options) (*Result, error) {
	res := &Result{Stack: st.Name}
	for _, w := range st.Warnings {
		fmt.Fprintf(d.Out, "warning: %s\n", w)
	}
	// Build everything first: a failure or an over-limit package changes nothing.
	layers := map[string]artifact{}
	for _, name := range sortedKeys(st.Layers) {
		a, err := d.pack(ctx, st, st.Layers[name].Dir, false, opts.Build)
		if err != nil {
			return res, fmt.Errorf("layer %s: %w", name, err)
		}
		layers[name] = a
	}
	funcs := map[string]artifact{}
	for _, name := range sortedKeys(st.Functions) {
		a, err := d.pack(ctx, st, st.Functions[name].Code, true, opts.Build)
		if err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
		funcs[name] = a
	}

	layerArns := map[string]string{}
	for _, name := range sortedKeys(st.Layers) {
		arn, err := d.layer(ctx, res, name, st.Layers[name], layers[name])
		if err != nil {
			return res, fmt.Errorf("layer %s: %w", name, err)
		}
		layerArns[name] = arn
	}
	var rollback error
	for _, name := range sortedKeys(st.Functions) {
		err := d.function(ctx, res, st, name, funcs[name], layerArns, opts)
		var rb *RollbackError
		if errors.As(err, &rb) {
			rollback = errors.Join(rollback, err)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("function %s: %w", name, err)
		}
	}
	if err := d.prune(ctx, res, st, opts.Prune); err != nil {
		return res, err
	}
	return res, rollback
}

// pack builds or reads the package at rel (relative to the stack file).
func (d *Deployer) pack(ctx context.Context, st *Stack, rel string, function bool, bo build.Options) (artifact, error) {
	path := rel
	if !filepath.IsAbs(path) {
		path = filepath.Join(st.Dir, rel)
	}
	info, err := os.Stat(path)
	if err != nil {
		return artifact{}, err
	}
	if !info.IsDir() {
		if !strings.EqualFold(filepath.Ext(path), ".zip") {
			return artifact{}, fmt.Errorf("%s is neither a directory nor a .zip file", rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return artifact{}, err
		}
		if int64(len(b)) > build.MaxZipped {
			return artifact{}, &build.LimitError{What: "zipped", Size: int64(len(b)), Limit: build.MaxZipped}
		}
		return artifact{zip: b, sha: build.Sha256(b), size: int64(len(b))}, nil
	}
	if function && build.IsSource(path) {
		r, err := build.Build(ctx, path, bo)
		if err != nil {
			return artifact{}, err
		}
		fmt.Fprintf(d.Out, "built %s: %s, %s zipped, %s unzipped\n", rel, r.Language, build.FormatSize(r.Size), build.FormatSize(r.Unzipped))
		return artifact{zip: r.Zip, sha: r.CodeSha256, size: r.Size, result: r}, nil
	}
	b, _, err := build.ZipDir(path, bo)
	if err != nil {
		return artifact{}, err
	}
	return artifact{zip: b, sha: build.Sha256(b), size: int64(len(b))}, nil
}

// layer publishes a new version of a stack layer when its content differs from the latest one,
// and returns the version ARN to use.
func (d *Deployer) layer(ctx context.Context, res *Result, name string, l *Layer, a artifact) (string, error) {
	list, err := d.Lambda.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return "", err
	}
	if err == nil && len(list.LayerVersions) > 0 {
		latest := list.LayerVersions[0]
		for _, v := range list.LayerVersions[1:] {
			if v.Version > latest.Version {
				latest = v
			}
		}
		got, err := d.Lambda.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(latest.Version)})
		if err != nil {
			return "", err
		}
		if got.Content != nil && aws.ToString(got.Content.CodeSha256) == a.sha &&
			slices.Equal(runtimeStrings(got.CompatibleRuntimes), l.Runtimes) {
			return aws.ToString(got.LayerVersionArn), nil
		}
	}
	in := &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: a.zip}}
	for _, r := range l.Runtimes {
		in.CompatibleRuntimes = append(in.CompatibleRuntimes, types.Runtime(r))
	}
	out, err := d.Lambda.PublishLayerVersion(ctx, in)
	if err != nil {
		return "", err
	}
	d.change(res, Change{Kind: "layer", Name: name, Action: "published", Detail: fmt.Sprintf("version %d", out.Version)})
	return aws.ToString(out.LayerVersionArn), nil
}

func runtimeStrings(rs []types.Runtime) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}

// desired is a function's configuration as the stack wants it.
type desired struct {
	runtime, handler, description string
	memory, timeout               int32
	env                           map[string]string
	layers                        []string
}

func (w desired) diff(c *types.FunctionConfiguration) []string {
	var d []string
	if string(c.Runtime) != w.runtime {
		d = append(d, "runtime")
	}
	if aws.ToString(c.Handler) != w.handler {
		d = append(d, "handler")
	}
	if aws.ToInt32(c.MemorySize) != w.memory {
		d = append(d, "memory")
	}
	if aws.ToInt32(c.Timeout) != w.timeout {
		d = append(d, "timeout")
	}
	if aws.ToString(c.Description) != w.description {
		d = append(d, "description")
	}
	var env map[string]string
	if c.Environment != nil {
		env = c.Environment.Variables
	}
	if len(env) != len(w.env) || (len(env) > 0 && !maps.Equal(env, w.env)) {
		d = append(d, "environment")
	}
	var layers []string
	for _, l := range c.Layers {
		layers = append(layers, aws.ToString(l.Arn))
	}
	if !slices.Equal(layers, w.layers) {
		d = append(d, "layers")
	}
	return d
}

// function brings one function, its alias, URL and schedules to the desired state.
func (d *Deployer) function(ctx context.Context, res *Result, st *Stack, name string, a artifact,
	layerArns map[string]string, opts Options) error {
	f := st.Functions[name]
	want := desired{runtime: f.Runtime, handler: f.Handler, description: f.Description,
		memory: f.Memory, timeout: f.Timeout, env: f.Env}
	if want.runtime == "" && a.result != nil {
		want.runtime = a.result.Runtime
	}
	if want.handler == "" && a.result != nil {
		want.handler = a.result.Handler
	}
	if want.handler == "" && strings.HasPrefix(want.runtime, "provided") {
		want.handler = "bootstrap"
	}
	if want.handler == "" && a.result != nil && len(a.result.Handlers) > 1 {
		return fmt.Errorf("handler is required: the sources define %s; name the one Lambda should call",
			strings.Join(a.result.Handlers, ", "))
	}
	if want.runtime == "" || want.handler == "" {
		return fmt.Errorf("runtime and handler are required (the build could not infer them)")
	}
	if want.memory == 0 {
		want.memory = 128
	}
	if want.timeout == 0 {
		want.timeout = 3
	}
	for _, l := range f.Layers {
		if arn, ok := layerArns[l]; ok {
			l = arn
		}
		want.layers = append(want.layers, l)
	}

	got, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		in := &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Runtime: types.Runtime(want.runtime), Handler: aws.String(want.handler),
			Role: aws.String(defaultRole), Code: &types.FunctionCode{ZipFile: a.zip},
			MemorySize: aws.Int32(want.memory), Timeout: aws.Int32(want.timeout), Description: aws.String(want.description),
			Layers: want.layers, Tags: map[string]string{StackTag: st.Name},
		}
		if len(want.env) > 0 {
			in.Environment = &types.Environment{Variables: want.env}
		}
		out, err := d.Lambda.CreateFunction(ctx, in)
		if err != nil {
			return err
		}
		if out.State != types.StateActive {
			w := lambda.NewFunctionActiveV2Waiter(d.Lambda, fastWaits)
			if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, waitTimeout); err != nil {
				return fmt.Errorf("wait for it to become active: %w", err)
			}
		}
		d.change(res, Change{Kind: "function", Name: name, Action: "created", Detail: fmt.Sprintf("%s, %s", want.runtime, build.FormatSize(a.size))})
	case err != nil:
		return err
	default:
		var what []string
		if aws.ToString(got.Configuration.CodeSha256) != a.sha {
			out, err := d.Lambda.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: a.zip})
			if err != nil {
				return err
			}
			if out.LastUpdateStatus != types.LastUpdateStatusSuccessful {
				if err := d.waitUpdated(ctx, name); err != nil {
					return err
				}
			}
			what = append(what, "code")
		}
		if diff := want.diff(got.Configuration); len(diff) > 0 {
			in := &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(name), Runtime: types.Runtime(want.runtime), Handler: aws.String(want.handler),
				MemorySize: aws.Int32(want.memory), Timeout: aws.Int32(want.timeout), Description: aws.String(want.description),
				Environment: &types.Environment{Variables: want.env}, Layers: want.layers,
			}
			if in.Environment.Variables == nil {
				in.Environment.Variables = map[string]string{}
			}
			if in.Layers == nil {
				in.Layers = []string{}
			}
			out, err := d.Lambda.UpdateFunctionConfiguration(ctx, in)
			if err != nil {
				return err
			}
			if out.LastUpdateStatus != types.LastUpdateStatusSuccessful {
				if err := d.waitUpdated(ctx, name); err != nil {
					return err
				}
			}
			what = append(what, diff...)
		}
		if len(what) > 0 {
			d.change(res, Change{Kind: "function", Name: name, Action: "updated", Detail: strings.Join(what, ", ")})
		}
	}

	qualifier := ""
	if f.Alias != "" {
		qualifier = f.Alias
		if err := d.alias(ctx, res, name, f, want, a.sha, opts); err != nil {
			return err
		}
	}
	if err := d.url(ctx, res, name, qualifier, f.URL); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	return d.schedules(ctx, res, name, qualifier, f.Schedules)
}

func fastWaits(o *lambda.FunctionActiveV2WaiterOptions) {
	o.MinDelay, o.MaxDelay = 100*time.Millisecond, 2*time.Second
}

func (d *Deployer) waitUpdated(ctx context.Context, name string) error {
	w := lambda.NewFunctionUpdatedV2Waiter(d.Lambda, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 2*time.Second
	})
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, waitTimeout); err != nil {
		return fmt.Errorf("wait for the update to finish: %w", err)
	}
	return nil
}

// alias publishes a version when the alias's version is not what the stack wants, and moves the
// alias to it as the deployment preference says.
func (d *Deployer) alias(ctx context.Context, res *Result, name string, f *Function, want desired, sha string, opts Options) error {
	al, err := d.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(name), Name: aws.String(f.Alias)})
	var nf *types.ResourceNotFoundException
	exists := true
	switch {
	case errors.As(err, &nf):
		exists = false
	case err != nil:
		return err
	}
	if exists {
		cur, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: al.FunctionVersion})
		if err != nil {
			return err
		}
		split := al.RoutingConfig != nil && len(al.RoutingConfig.AdditionalVersionWeights) > 0
		if aws.ToString(cur.Configuration.CodeSha256) == sha && len(want.diff(cur.Configuration)) == 0 && !split {
			return nil
		}
	}
	pub, err := d.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name), CodeSha256: aws.String(sha)})
	if err != nil {
		return fmt.Errorf("publish version: %w", err)
	}
	newV := aws.ToString(pub.Version)
	d.change(res, Change{Kind: "version", Name: name, Action: "published", Detail: "version " + newV})
	if !exists {
		if _, err := d.Lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name),
			Name: aws.String(f.Alias), FunctionVersion: aws.String(newV)}); err != nil {
			return fmt.Errorf("create alias %s: %w", f.Alias, err)
		}
		d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "created", Detail: "→ " + newV})
		return nil
	}
	oldV := aws.ToString(al.FunctionVersion)
	if oldV == newV {
		// A previous rollout was interrupted part way: finish it at once.
		if err := d.route(ctx, name, f.Alias, newV, "", 0); err != nil {
			return err
		}
		d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "shifted", Detail: "→ " + newV})
		return nil
	}
	pref, _ := ParsePreference(f.Deploy)
	if opts.StepInterval > 0 {
		pref.Interval = opts.StepInterval
	}
	if err := d.rollout(ctx, name, f.Alias, oldV, newV, pref, opts.MaxErrorRate); err != nil {
		var rb *RollbackError
		if errors.As(err, &rb) {
			d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "rolled back", Detail: oldV + " ← " + newV})
		}
		return err
	}
	d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "shifted", Detail: fmt.Sprintf("%s → %s (%s)", oldV, newV, pref.Type)})
	return nil
}

// route points alias at version, with weight of the traffic on extra when extra is not "".
func (d *Deployer) route(ctx context.Context, name, alias, version, extra string, weight float64) error {
	weights := map[string]float64{}
	if extra != "" {
		weights[extra] = weight
	}
	_, err := d.Lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(name), Name: aws.String(alias),
		FunctionVersion: aws.String(version), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: weights}})
	if err != nil {
		return fmt.Errorf("update alias %s: %w", alias, err)
	}
	return nil
}

// url creates, updates or deletes the function URL on qualifier ("" for the unqualified function).
func (d *Deployer) url(ctx context.Context, res *Result, name, qualifier string, u *URL) error {
	var q *string
	if qualifier != "" {
		q = aws.String(qualifier)
	}
	got, err := d.Lambda.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name), Qualifier: q})
	var nf *types.ResourceNotFoundException
	exists := true
	switch {
	case errors.As(err, &nf):
		exists = false
	case err != nil:
		return err
	}
	if u == nil {
		if exists {
			if _, err := d.Lambda.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(name), Qualifier: q}); err != nil {
				return err
			}
			d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "deleted", Detail: aws.ToString(got.FunctionUrl)})
		}
		return nil
	}
	auth := types.FunctionUrlAuthType(u.Auth)
	if auth == "" {
		auth = types.FunctionUrlAuthTypeNone
	}
	cors := u.Cors.sdk()
	if !exists {
		out, err := d.Lambda.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name),
			Qualifier: q, AuthType: auth, Cors: cors})
		if err != nil {
			return err
		}
		d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "created", Detail: aws.ToString(out.FunctionUrl)})
		return d.publicURL(ctx, name, q, auth)
	}
	if got.AuthType == auth && corsEqual(got.Cors, cors) {
		return d.publicURL(ctx, name, q, auth)
	}
	if cors == nil {
		cors = &types.Cors{}
	}
	if _, err := d.Lambda.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String(name),
		Qualifier: q, AuthType: auth, Cors: cors}); err != nil {
		return err
	}
	d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "updated", Detail: aws.ToString(got.FunctionUrl)})
	return d.publicURL(ctx, name, q, auth)
}

// publicURLStatement is the statement that opens a NONE function URL to anyone; SAM adds the
// same permission for a FunctionUrlConfig with AuthType NONE.
const publicURLStatement = "FunctionURLAllowPublicAccess"

// publicURL grants anyone lambda:InvokeFunctionUrl when the URL's AuthType is NONE (without it
// Lambda answers 403), once.
func (d *Deployer) publicURL(ctx context.Context, name string, qualifier *string, auth types.FunctionUrlAuthType) error {
	if auth != types.FunctionUrlAuthTypeNone {
		return nil
	}
	_, err := d.Lambda.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(name), Qualifier: qualifier,
		StatementId: aws.String(publicURLStatement), Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"),
		FunctionUrlAuthType: types.FunctionUrlAuthTypeNone})
	var exists *types.ResourceConflictException
	if errors.As(err, &exists) {
		return nil
	}
	return err
}

func (c *Cors) sdk() *types.Cors {
	if c == nil {
		return nil
	}
	out := &types.Cors{AllowOrigins: c.Origins, AllowMethods: c.Methods, AllowHeaders: c.Headers, ExposeHeaders: c.Expose}
	if c.Credentials {
		out.AllowCredentials = aws.Bool(true)
	}
	if c.MaxAge > 0 {
		out.MaxAge = aws.Int32(c.MaxAge)
	}
	return out
}

func corsEqual(a, b *types.Cors) bool {
	empty := func(c *types.Cors) bool {
		return c == nil || (len(c.AllowOrigins) == 0 && len(c.AllowMethods) == 0 && len(c.AllowHeaders) == 0 &&
			len(c.ExposeHeaders) == 0 && !aws.ToBool(c.AllowCredentials) && aws.ToInt32(c.MaxAge) == 0)
	}
	if empty(a) || empty(b) {
		return empty(a) && empty(b)
	}
	return slices.Equal(a.AllowOrigins, b.AllowOrigins) && slices.Equal(a.AllowMethods, b.AllowMethods) &&
		slices.Equal(a.AllowHeaders, b.AllowHeaders) && slices.Equal(a.ExposeHeaders, b.ExposeHeaders) &&
		aws.ToBool(a.AllowCredentials) == aws.ToBool(b.AllowCredentials) && aws.ToInt32(a.MaxAge) == aws.ToInt32(b.MaxAge)
}

// scheduleName is the name of a function's schedule: <function>-<name>, at most 64 characters.
func scheduleName(function, name string) string {
	s := function + "-" + sanitizeName(name)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// schedules creates or updates the function's schedules and deletes the ones that target it but
// the stack no longer has.
func (d *Deployer) schedules(ctx context.Context, res *Result, name, qualifier string, want map[string]*Schedule) error {
	fn, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		return err
	}
	arn := aws.ToString(fn.Configuration.FunctionArn)
	if qualifier != "" {
		arn += ":" + qualifier
	}
	keep := map[string]bool{}
	for _, s := range sortedKeys(want) {
		sc := want[s]
		sname := scheduleName(name, s)
		keep[sname] = true
		state := stypes.ScheduleStateEnabled
		if sc.Enabled != nil && !*sc.Enabled {
			state = stypes.ScheduleStateDisabled
		}
		input := sc.Input
		if sc.Rule && input == "" {
			rule := sc.RuleName
			if rule == "" {
				rule = sname
			}
			input = scheduledEvent(aws.ToString(fn.Configuration.FunctionArn), rule)
		}
		target := &stypes.Target{Arn: aws.String(arn), RoleArn: aws.String(defaultRole)}
		if input != "" {
			target.Input = aws.String(input)
		}
		got, err := d.Scheduler.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(sname)})
		var nf *stypes.ResourceNotFoundException
		exists := true
		switch {
		case errors.As(err, &nf):
			exists = false
		case err != nil:
			return fmt.Errorf("schedule %s: %w", sname, err)
		}
		if exists && aws.ToString(got.ScheduleExpression) == sc.Expression && got.State == state && got.Target != nil &&
			aws.ToString(got.Target.Arn) == arn && aws.ToString(got.Target.Input) == input {
			continue
		}
		ftw := &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff}
		action := "created"
		if exists {
			_, err = d.Scheduler.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: aws.String(sname),
				ScheduleExpression: aws.String(sc.Expression), FlexibleTimeWindow: ftw, Target: target, State: state})
			action = "updated"
		} else {
			_, err = d.Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String(sname),
				ScheduleExpression: aws.String(sc.Expression), FlexibleTimeWindow: ftw, Target: target, State: state})
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", sname, err)
		}
		d.change(res, Change{Kind: "schedule", Name: name, Resource: sname, Action: action, Detail: sc.Expression})
	}
	return d.deleteSchedules(ctx, res, name, aws.ToString(fn.Configuration.FunctionArn), keep)
}

// scheduledEvent is the Input that makes a Scheduler schedule deliver what an EventBridge rule
// named rule delivers to a function: EventBridge's "Scheduled Event" document, its id and time
// filled in per occurrence by Scheduler's context attributes (the time as EventBridge writes it,
// 2006-01-02T15:04:05Z; the id the same for every retry of one occurrence). functionArn gives
// the region and account.
func scheduledEvent(functionArn, rule string) string {
	parts := strings.Split(functionArn, ":") // arn:aws:lambda:REGION:ACCOUNT:function:NAME
	region, account := "", ""
	if len(parts) > 4 {
		region, account = parts[3], parts[4]
	}
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return `{"version":"0","id":"<aws.scheduler.execution-id>","detail-type":"Scheduled Event","source":"aws.events",` +
		`"account":` + str(account) + `,"time":"<aws.scheduler.scheduled-time>","region":` + str(region) +
		`,"resources":[` + str("arn:aws:events:"+region+":"+account+":rule/"+rule) + `],"detail":{}}`
}

// deleteSchedules deletes the schedules that target function (any qualifier) and are not in keep.
func (d *Deployer) deleteSchedules(ctx context.Context, res *Result, name, functionArn string, keep map[string]bool) error {
	p := scheduler.NewListSchedulesPaginator(d.Scheduler, &scheduler.ListSchedulesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		for _, s := range page.Schedules {
			if s.Target == nil || keep[aws.ToString(s.Name)] {
				continue
			}
			t := aws.ToString(s.Target.Arn)
			if t != functionArn && !strings.HasPrefix(t, functionArn+":") {
				continue
			}
			if _, err := d.Scheduler.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: s.Name}); err != nil {
				return fmt.Errorf("delete schedule %s: %w", aws.ToString(s.Name), err)
			}
			d.change(res, Change{Kind: "schedule", Name: name, Resource: aws.ToString(s.Name), Action: "deleted"})
		}
	}
	return nil
}

// prune deletes (or, without prune, lists) the functions tagged with the stack's name that the
// stack no longer has.
func (d *Deployer) prune(ctx context.Context, res *Result, st *Stack, prune bool) error {
	p := lambda.NewListFunctionsPaginator(d.Lambda, &lambda.ListFunctionsInput{})
	var gone []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list functions: %w", err)
		}
		for _, fc := range page.Functions {
			name := aws.ToString(fc.FunctionName)
			if _, ok := st.Functions[name]; ok {
				continue
			}
			got, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			if err != nil {
				continue // deleted meanwhile
			}
			if got.Tags[StackTag] == st.Name {
				gone = append(gone, name)
			}
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		if !prune {
			res.Unpruned = append(res.Unpruned, name)
			fmt.Fprintf(d.Out, "%s is no longer in the stack; --prune deletes it\n", name)
			continue
		}
		fn, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			return err
		}
		if err := d.deleteSchedules(ctx, res, name, aws.ToString(fn.Configuration.FunctionArn), nil); err != nil {
			return err
		}
		if _, err := d.Lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
			return fmt.Errorf("delete function %s: %w", name, err)
		}
		d.change(res, Change{Kind: "function", Name: name, Action: "deleted"})
	}
	return nil
}

// change records c and prints it.
func (d *Deployer) change(res *Result, c Change) {
	res.Changes = append(res.Changes, c)
	line := fmt.Sprintf("%-8s %s", c.Kind, c.Name)
	if c.Resource != "" {
		line += " " + c.Resource
	}
	line += ": " + c.Action
	if c.Detail != "" {
		line += " (" + c.Detail + ")"
	}
	fmt.Fprintln(d.Out, line)
}
