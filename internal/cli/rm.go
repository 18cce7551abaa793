package cli

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"
)

func (a *app) rmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"delete"},
		Short:   "Delete functions",
		Long: "Delete each named function. A failure is reported and the rest are still deleted;\n" +
			"the exit code is 1 if any failed.",
		Args: minArgs(1, "function NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			client, err := a.lambdaClient(ctx)
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				_, err := client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintln(a.stderr, errorLine(err, a.endpoint))
					failed = true
					continue
				}
				fmt.Fprintf(a.stdout, "deleted %s\n", name)
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
}
