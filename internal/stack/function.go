// One function's code and configuration compared with the deployed ones and changed by the fewest
// calls, waiting for Lambda to finish each change; then its alias, URL and schedules.

package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/build"
)

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
func (d *Deployer) function(ctx context.Context, res *Result, st *Stack, name string, f *Function, a artifact,
	layerArns map[string]string, opts Options) error {
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
