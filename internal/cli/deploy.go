package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/build"
)

const (
	// defaultRole is the execution role of functions created without --role; Flint does not
	// check roles, but Lambda's API requires one.
	defaultRole = "arn:aws:iam::000000000000:role/flint"
	// deployWait bounds the wait for a function to become Active or finish an update.
	deployWait = 5 * time.Minute
)

// deployOptions are deploy's flags.
type deployOptions struct {
	name        string
	runtime     string
	handler     string
	env         []string
	memory      int32
	timeout     int32
	description string
	role        string
	json        bool
	// found is what a built source directory defines that could be the handler, when the build
	// could not tell which one it is (nil otherwise).
	found []string
}

func (a *app) deployCommand() *cobra.Command {
	var o deployOptions
	var st stackOptions
	cmd := &cobra.Command{
		Use:   "deploy PATH --name NAME --runtime RUNTIME [--handler HANDLER]",
		Short: "Create or update a function from a directory or a .zip file",
		Long: "Create a function, or update its code and then the configuration given by flags.\n\n" +
			"PATH is a directory, zipped in memory (the same tree always gives the same CodeSha256, as\n" +
			"with flint build and stacks; sources are built first, see flint build --help), or a .zip\n" +
			"file sent as is. --runtime is required to create a function; --handler\n" +
			"defaults to \"bootstrap\" for provided.* runtimes. --env replaces all of a function's\n" +
			"environment variables.",
		Example: "  flint deploy ./build --name go-echo --runtime provided.al2023\n" +
			"  flint deploy examples/python-hello --name python-hello --runtime python3.12 --handler app.handler",
		Args: rangeArgs(0, 1, "PATH (a directory or a .zip file)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if st.file != "" {
				return a.deployStack(cmd, args, st)
			}
			if len(args) == 0 {
				return usageErrorf(cmd, "missing PATH (a directory or a .zip file)")
			}
			return a.deploy(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "function name (required)")
	f.StringVar(&o.runtime, "runtime", "", "runtime, e.g. provided.al2023, python3.12, nodejs20.x")
	f.StringVar(&o.handler, "handler", "", "handler, e.g. app.handler (default \"bootstrap\" for provided.* runtimes)")
	f.StringArrayVar(&o.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.Int32Var(&o.memory, "memory", 0, "memory in MB (Lambda's default: 128)")
	f.Int32Var(&o.timeout, "timeout", 0, "timeout in seconds (Lambda's default: 3)")
	f.StringVar(&o.description, "description", "", "description")
	f.StringVar(&o.role, "role", "", "execution role ARN (default "+defaultRole+")")
	f.BoolVar(&o.json, "json", false, "print what was done as JSON")
	st.addFlags(cmd)
	return cmd
}

func (a *app) deploy(cmd *cobra.Command, path string, o deployOptions) error {
	ctx := cmd.Context()
	if o.name == "" {
		return usageErrorf(cmd, "--name is required")
	}
	env, err := parseEnv(o.env)
	if err != nil {
		return usageErrorf(cmd, "%w", err)
	}
	changed := cmd.Flags().Changed
	if changed("runtime") && o.runtime == "" {
		return usageErrorf(cmd, "--runtime must not be empty")
	}
	zipBytes, err := a.sourcePackage(cmd, path, &o)
	if err != nil {
		return err
	}
	client, err := a.lambdaClient(ctx)
	if err != nil {
		return err
	}

	cur, err := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(o.name)})
	var notFound *types.ResourceNotFoundException
	var fn *types.FunctionConfiguration
	res := deployResult{Function: o.name}
	switch {
	case errors.As(err, &notFound):
		if o.runtime == "" {
			return usageErrorf(cmd, "--runtime is required to create function %s", o.name)
		}
		handler := o.handler
		if handler == "" {
			if !strings.HasPrefix(o.runtime, "provided") {
				if len(o.found) > 0 {
					return usageErrorf(cmd, "--handler is required for runtime %s: %s defines %s; pass the one Lambda should call, e.g. --handler %s",
						o.runtime, path, strings.Join(o.found, ", "), o.found[0])
				}
				return usageErrorf(cmd, "--handler is required for runtime %s", o.runtime)
			}
			handler = "bootstrap"
		}
		in := &lambda.CreateFunctionInput{
			FunctionName: aws.String(o.name),
			Runtime:      types.Runtime(o.runtime),
			Handler:      aws.String(handler),
			Role:         aws.String(defaultRole),
			Code:         &types.FunctionCode{ZipFile: zipBytes},
		}
		if changed("role") {
			in.Role = aws.String(o.role)
		}
		if changed("env") {
			in.Environment = &types.Environment{Variables: env}
		}
		if changed("memory") {
			in.MemorySize = aws.Int32(o.memory)
		}
		if changed("timeout") {
			in.Timeout = aws.Int32(o.timeout)
		}
		if changed("description") {
			in.Description = aws.String(o.description)
		}
		if fn, err = createFunction(ctx, client, in); err != nil {
			return err
		}
		res.Action = "created"
	case err != nil:
		return err
	default:
		c := cur.Configuration
		if c == nil {
			c = &types.FunctionConfiguration{}
		}
		// Only what differs from the function as it is is sent, so that the output can say what
		// changed and an identical deploy changes nothing.
		up := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(o.name)}
		set := func(flag, field string, differs bool, apply func()) {
			if changed(flag) && differs {
				apply()
				res.Configuration = append(res.Configuration, field)
			}
		}
		set("runtime", "Runtime", string(c.Runtime) != o.runtime, func() { up.Runtime = types.Runtime(o.runtime) })
		set("handler", "Handler", aws.ToString(c.Handler) != o.handler, func() { up.Handler = aws.String(o.handler) })
		set("role", "Role", aws.ToString(c.Role) != o.role, func() { up.Role = aws.String(o.role) })
		set("env", "Environment", !maps.Equal(envOf(c), env), func() { up.Environment = &types.Environment{Variables: env} })
		set("memory", "MemorySize", aws.ToInt32(c.MemorySize) != o.memory, func() { up.MemorySize = aws.Int32(o.memory) })
		set("timeout", "Timeout", aws.ToInt32(c.Timeout) != o.timeout, func() { up.Timeout = aws.Int32(o.timeout) })
		set("description", "Description", aws.ToString(c.Description) != o.description, func() { up.Description = aws.String(o.description) })
		if len(res.Configuration) == 0 {
			up = nil
		}
		res.Code = aws.ToString(c.CodeSha256) != build.Sha256(zipBytes)
		switch {
		case !res.Code && up == nil:
			fn, res.Action = c, "unchanged"
		default:
			if fn, err = updateFunction(ctx, client, o.name, zipBytes, res.Code, up); err != nil {
				return err
			}
			res.Action = "updated"
		}
	}
	res.Runtime, res.CodeSha256, res.CodeSize = string(fn.Runtime), aws.ToString(fn.CodeSha256), fn.CodeSize
	if res.CodeSize == 0 {
		res.CodeSize = int64(len(zipBytes))
	}
	res.Warning = a.runtimeWarning(ctx, res.Runtime)
	return a.printDeploy(res, o.json)
}

// deployResult is what flint deploy did, as --json prints it.
type deployResult struct {
	Function string `json:"function"`
	Action   string `json:"action"` // created, updated or unchanged
	// Code reports whether an update replaced the code; Configuration names the configuration
	// fields it changed.
	Code          bool     `json:"code_changed"`
	Configuration []string `json:"configuration_changed,omitempty"`
	Runtime       string   `json:"runtime"`
	CodeSha256    string   `json:"code_sha256"`
	CodeSize      int64    `json:"code_size"`
	// Warning says the runtime has no interpreter of its version on the server.
	Warning string `json:"warning,omitempty"`
}

func (a *app) printDeploy(r deployResult, asJSON bool) error {
	if r.Warning != "" {
		fmt.Fprintf(a.stderr, "flint: warning: %s (flint runtimes shows the mapping)\n", r.Warning)
	}
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	what := r.Action + " " + r.Function
	if r.Action == "updated" {
		var parts []string
		if r.Code {
			parts = append(parts, "code")
		}
		if len(r.Configuration) > 0 {
			parts = append(parts, "configuration ("+strings.Join(r.Configuration, ", ")+")")
		}
		what += ": " + strings.Join(parts, ", ")
	}
	_, err := fmt.Fprintf(a.stdout, "%s (runtime %s, CodeSha256 %s, %d bytes)\n", what, r.Runtime, r.CodeSha256, r.CodeSize)
	return err
}

// runtimeWarning is the server's word on runtime when it has no interpreter of that version
// (GET /flint/v1/runtimes); "" when it has, or cannot say.
func (a *app) runtimeWarning(ctx context.Context, runtime string) string {
	t, _, err := a.runtimeTable(ctx)
	if err != nil {
		return ""
	}
	for _, i := range t.Runtimes {
		if i.Runtime == runtime {
			return i.Problem()
		}
	}
	return ""
}

func envOf(c *types.FunctionConfiguration) map[string]string {
	if c.Environment == nil || c.Environment.Variables == nil {
		return map[string]string{}
	}
	return c.Environment.Variables
}

// createFunction creates a function and waits until it is Active.
func createFunction(ctx context.Context, client *lambda.Client, in *lambda.CreateFunctionInput) (*types.FunctionConfiguration, error) {
	out, err := client.CreateFunction(ctx, in)
	if err != nil {
		return nil, err
	}
	if out.State == types.StateActive {
		return &types.FunctionConfiguration{Runtime: out.Runtime, CodeSha256: out.CodeSha256, CodeSize: out.CodeSize}, nil
	}
	name := aws.ToString(in.FunctionName)
	w := lambda.NewFunctionActiveV2Waiter(client, func(o *lambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 250*time.Millisecond, 5*time.Second
	})
	got, err := w.WaitForOutput(ctx, &lambda.GetFunctionInput{FunctionName: in.FunctionName}, deployWait)
	if err != nil {
		return nil, waitError(ctx, client, name, "become active", err)
	}
	return got.Configuration, nil
}

// updateFunction replaces a function's code (when newCode), then applies config if it is not
// nil, waiting for each update to finish: Lambda refuses an update while another is in progress.
func updateFunction(ctx context.Context, client *lambda.Client, name string, zipBytes []byte, newCode bool,
	config *lambda.UpdateFunctionConfigurationInput) (*types.FunctionConfiguration, error) {
	var fn *types.FunctionConfiguration
	if newCode {
		code, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
			FunctionName: aws.String(name),
			ZipFile:      zipBytes,
		})
		if err != nil {
			return nil, err
		}
		fn = &types.FunctionConfiguration{Runtime: code.Runtime, CodeSha256: code.CodeSha256, CodeSize: code.CodeSize}
		if code.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			if fn, err = waitUpdated(ctx, client, name); err != nil {
				return nil, err
			}
		}
	}
	if config == nil {
		return fn, nil
	}
	out, err := client.UpdateFunctionConfiguration(ctx, config)
	if err != nil {
		return nil, err
	}
	if out.LastUpdateStatus == types.LastUpdateStatusSuccessful {
		return &types.FunctionConfiguration{Runtime: out.Runtime, CodeSha256: out.CodeSha256, CodeSize: out.CodeSize}, nil
	}
	return waitUpdated(ctx, client, name)
}

// waitUpdated waits until the function's LastUpdateStatus is Successful.
func waitUpdated(ctx context.Context, client *lambda.Client, name string) (*types.FunctionConfiguration, error) {
	w := lambda.NewFunctionUpdatedV2Waiter(client, func(o *lambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 250*time.Millisecond, 5*time.Second
	})
	got, err := w.WaitForOutput(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, deployWait)
	if err != nil {
		return nil, waitError(ctx, client, name, "finish updating", err)
	}
	return got.Configuration, nil
}

// waitError explains a failed wait with the function's own reason when it has one.
func waitError(ctx context.Context, client *lambda.Client, name, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out, gerr := client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if gerr == nil && out.Configuration != nil {
		c := out.Configuration
		switch {
		case c.State == types.StateFailed:
			return fmt.Errorf("function %s failed to become active: %s: %s", name, c.StateReasonCode, aws.ToString(c.StateReason))
		case c.LastUpdateStatus == types.LastUpdateStatusFailed:
			return fmt.Errorf("function %s update failed: %s: %s", name, c.LastUpdateStatusReasonCode, aws.ToString(c.LastUpdateStatusReason))
		}
	}
	return fmt.Errorf("wait for function %s to %s: %w", name, what, err)
}

// parseEnv turns repeated KEY=VALUE flags into a map; the value may be empty or contain '=',
// and a later KEY wins.
func parseEnv(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}
