package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/spf13/cobra"
)

// listedFunction is one function as `flint ls --json` prints it: its configuration (the same
// fields as ListFunctions) and what hangs off it.
type listedFunction struct {
	types.FunctionConfiguration
	Versions            []string                                `json:"Versions"` // published, without $LATEST
	Aliases             []types.AliasConfiguration              `json:"Aliases"`
	EventSourceMappings []types.EventSourceMappingConfiguration `json:"EventSourceMappings"`
	FunctionUrls        []types.FunctionUrlConfig               `json:"FunctionUrls"`
	Schedules           []schedtypes.ScheduleSummary            `json:"Schedules"`
}

func (a *app) lsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List functions with their versions, aliases and triggers",
		Long: "List functions: runtime, memory, timeout, published versions, aliases (NAME=VERSION, with\n" +
			"the weighted second version when traffic is split) and triggers (url, queue:NAME,\n" +
			"stream:NAME, schedule:NAME).",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			client, err := a.lambdaClient(ctx)
			if err != nil {
				return err
			}
			lo := client.Options()
			sc := scheduler.New(scheduler.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient,
				Retryer: lo.Retryer, BaseEndpoint: aws.String(a.endpoint)})
			fns, err := listFunctions(ctx, client, sc)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, fns)
			}
			return writeFunctionTable(a, fns)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the functions (configuration, versions, aliases, triggers) as JSON")
	return cmd
}

// listFunctions reads every function and, for each, its versions, aliases, event source
// mappings, URLs and the schedules that target it.
func listFunctions(ctx context.Context, client *lambda.Client, sc *scheduler.Client) ([]listedFunction, error) {
	fns := []listedFunction{}
	p := lambda.NewListFunctionsPaginator(client, &lambda.ListFunctionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range page.Functions {
			fns = append(fns, listedFunction{FunctionConfiguration: c, Versions: []string{}, Aliases: []types.AliasConfiguration{},
				EventSourceMappings: []types.EventSourceMappingConfiguration{}, FunctionUrls: []types.FunctionUrlConfig{},
				Schedules: []schedtypes.ScheduleSummary{}})
		}
	}
	for i := range fns {
		f := &fns[i]
		name := f.FunctionName
		vp := lambda.NewListVersionsByFunctionPaginator(client, &lambda.ListVersionsByFunctionInput{FunctionName: name})
		for vp.HasMorePages() {
			page, err := vp.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("versions of %s: %w", aws.ToString(name), err)
			}
			for _, v := range page.Versions {
				if ver := aws.ToString(v.Version); ver != "$LATEST" {
					f.Versions = append(f.Versions, ver)
				}
			}
		}
		ap := lambda.NewListAliasesPaginator(client, &lambda.ListAliasesInput{FunctionName: name})
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("aliases of %s: %w", aws.ToString(name), err)
			}
			f.Aliases = append(f.Aliases, page.Aliases...)
		}
		mp := lambda.NewListEventSourceMappingsPaginator(client, &lambda.ListEventSourceMappingsInput{FunctionName: name})
		for mp.HasMorePages() {
			page, err := mp.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("event source mappings of %s: %w", aws.ToString(name), err)
			}
			f.EventSourceMappings = append(f.EventSourceMappings, page.EventSourceMappings...)
		}
		up := lambda.NewListFunctionUrlConfigsPaginator(client, &lambda.ListFunctionUrlConfigsInput{FunctionName: name})
		for up.HasMorePages() {
			page, err := up.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("URLs of %s: %w", aws.ToString(name), err)
			}
			f.FunctionUrls = append(f.FunctionUrls, page.FunctionUrlConfigs...)
		}
	}
	if len(fns) == 0 {
		return fns, nil
	}
	sp := scheduler.NewListSchedulesPaginator(sc, &scheduler.ListSchedulesInput{})
	for sp.HasMorePages() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		for _, s := range page.Schedules {
			if s.Target == nil {
				continue
			}
			t := aws.ToString(s.Target.Arn)
			for i := range fns {
				arn := aws.ToString(fns[i].FunctionArn)
				if t == arn || strings.HasPrefix(t, arn+":") {
					fns[i].Schedules = append(fns[i].Schedules, s)
				}
			}
		}
	}
	return fns, nil
}

// writeFunctionTable prints fns as an aligned table, one function a line.
func writeFunctionTable(a *app, fns []listedFunction) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tVERSIONS\tALIASES\tTRIGGERS\tLAST-MODIFIED")
	for _, fn := range fns {
		runtime := string(fn.Runtime)
		if runtime == "" {
			runtime = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", aws.ToString(fn.FunctionName), runtime,
			orDash(fn.MemorySize, "MB"), orDash(fn.Timeout, "s"), orDashString(strings.Join(fn.Versions, ",")),
			orDashString(strings.Join(aliasCells(fn.Aliases), " ")), orDashString(strings.Join(triggerCells(fn), " ")),
			aws.ToString(fn.LastModified))
	}
	return tw.Flush()
}

// aliasCells renders aliases as NAME=VERSION, or NAME=1+2:10% when 10% goes to version 2.
func aliasCells(as []types.AliasConfiguration) []string {
	var out []string
	for _, al := range as {
		s := aws.ToString(al.Name) + "=" + aws.ToString(al.FunctionVersion)
		if al.RoutingConfig != nil {
			for v, w := range al.RoutingConfig.AdditionalVersionWeights {
				s += "+" + v + ":" + strconv.FormatFloat(w*100, 'f', -1, 64) + "%"
			}
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// triggerCells renders what invokes a function besides direct calls: url, queue:NAME,
// stream:NAME (the source ARN's last part), schedule:NAME.
func triggerCells(fn listedFunction) []string {
	var out []string
	for _, u := range fn.FunctionUrls {
		q := ""
		if _, qual, ok := strings.Cut(strings.TrimPrefix(aws.ToString(u.FunctionArn), aws.ToString(fn.FunctionArn)), ":"); ok {
			q = ":" + qual
		}
		out = append(out, "url"+q+"("+string(u.AuthType)+")")
	}
	for _, m := range fn.EventSourceMappings {
		src := aws.ToString(m.EventSourceArn)
		kind, name := "source", src
		if i := strings.LastIndexByte(src, ':'); i >= 0 {
			name = src[i+1:]
		}
		if k, n, ok := strings.Cut(name, "/"); ok { // queue/NAME, stream/NAME
			kind, name = k, n
		}
		cell := kind + ":" + name
		if st := aws.ToString(m.State); st != "" && st != "Enabled" {
			cell += "(" + st + ")"
		}
		out = append(out, cell)
	}
	for _, s := range fn.Schedules {
		out = append(out, "schedule:"+aws.ToString(s.Name))
	}
	return out
}

// orDash renders an optional number with its unit, or "-" when absent.
func orDash(v *int32, unit string) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(int(*v)) + unit
}
