package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/flint-run/flint/internal/stack"
)

// stackOptions are deploy's flags for stack files (deploy -f).
type stackOptions struct {
	file         string
	name         string
	prune        bool
	step         time.Duration
	maxErrorRate float64
	output       string
}

func (o *stackOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "deploy the stack in this file (flint.yaml or a SAM template.yaml) instead of PATH")
	f.StringVar(&o.name, "stack", "", "stack name (with -f; default: the file's 'stack', else its directory's name)")
	f.BoolVar(&o.prune, "prune", false, "with -f: delete the stack's functions, queues, topics, streams and APIs that the file no longer has")
	f.DurationVar(&o.step, "deploy-step", 0, "with -f: the interval between gradual deployment steps (default: the preference's own)")
	f.Float64Var(&o.maxErrorRate, "max-error-rate", 0, "with -f: the new version's error rate over a step above which it is rolled back")
	f.StringVarP(&o.output, "output", "o", "text", "with -f: text or json")
}

// deployStack deploys a stack file. Exit code 1 when a rollout was rolled back.
func (a *app) deployStack(cmd *cobra.Command, args []string, o stackOptions) error {
	ctx := cmd.Context()
	if len(args) > 0 {
		return usageErrorf(cmd, "-f takes no PATH (got %q)", args[0])
	}
	if o.output != "text" && o.output != "json" {
		return usageErrorf(cmd, "--output %q: want text or json", o.output)
	}
	st, err := stack.Load(o.file)
	if err != nil {
		return err
	}
	if o.name != "" {
		st.Name = o.name
	}
	lc, err := a.lambdaClient(ctx)
	if err != nil {
		return err
	}
	lo := lc.Options()
	sc := scheduler.New(scheduler.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
		Retryer: lo.Retryer, BaseEndpoint: aws.String(a.endpoint)})
	progress := a.stdout
	if o.output == "json" {
		progress = a.stderr
	}
	d := &stack.Deployer{Lambda: lc, Scheduler: sc, Endpoint: a.endpoint, MetricsURL: a.endpoint + "/metrics",
		HTTP: plainHTTPClient(30 * time.Second), Out: progress,
		SQS: sqs.New(sqs.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
			Retryer: lo.Retryer, BaseEndpoint: aws.String(a.endpoint)}),
		SNS: sns.New(sns.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
			Retryer: lo.Retryer, BaseEndpoint: aws.String(a.endpoint)}),
		Kinesis: kinesis.New(kinesis.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
			Retryer: lo.Retryer, BaseEndpoint: aws.String(a.endpoint)})}
	res, err := d.Deploy(ctx, st, stack.Options{Prune: o.prune, StepInterval: o.step, MaxErrorRate: o.maxErrorRate})
	var rb *stack.RollbackError
	if err != nil && !errors.As(err, &rb) {
		return err
	}
	if o.output == "json" {
		out := struct {
			*stack.Result
			RolledBack bool   `json:"rolled_back"`
			Error      string `json:"error,omitempty"`
		}{Result: res, RolledBack: rb != nil}
		if err != nil {
			out.Error = err.Error()
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(out); jerr != nil {
			return jerr
		}
	} else {
		printSummary(a.stdout, res)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, errorLine(err, a.endpoint))
		return errReported
	}
	return nil
}

// printSummary prints what a stack deployment changed as a table, or "no changes".
func printSummary(w io.Writer, res *stack.Result) {
	if len(res.Changes) == 0 {
		fmt.Fprintf(w, "stack %s: no changes\n", res.Stack)
		return
	}
	fmt.Fprintf(w, "\nstack %s: %d changes\n", res.Stack, len(res.Changes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tRESOURCE\tACTION\tDETAIL")
	for _, c := range res.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Name, dash(c.Resource), c.Action, dash(c.Detail))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
