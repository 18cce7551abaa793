package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func (a *app) lsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List functions",
		Args:    rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			client, err := a.lambdaClient(ctx)
			if err != nil {
				return err
			}
			fns := []types.FunctionConfiguration{}
			p := lambda.NewListFunctionsPaginator(client, &lambda.ListFunctionsInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				fns = append(fns, page.Functions...)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(fns)
			}
			return writeFunctionTable(a, fns)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the function configurations as JSON")
	return cmd
}

// writeFunctionTable prints fns as an aligned table, one function a line.
func writeFunctionTable(a *app, fns []types.FunctionConfiguration) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tLAST-MODIFIED")
	for _, fn := range fns {
		runtime := string(fn.Runtime)
		if runtime == "" {
			runtime = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(fn.FunctionName), runtime,
			orDash(fn.MemorySize, "MB"), orDash(fn.Timeout, "s"), aws.ToString(fn.LastModified))
	}
	return tw.Flush()
}

// orDash renders an optional number with its unit, or "-" when absent.
func orDash(v *int32, unit string) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(int(*v)) + unit
}
