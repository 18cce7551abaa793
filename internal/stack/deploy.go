// Deploy and what it returns: every package built first, then each layer and function brought to
// the stack's state (layer.go, function.go, alias.go, url.go, schedule.go), then the functions the
// stack no longer has pruned.

package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

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
