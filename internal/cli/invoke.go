package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func (a *app) invokeCommand() *cobra.Command {
	var (
		payloadFile string
		qualifier   string
		tail        bool
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME [JSON]",
		Short: "Invoke a function and print its response",
		Long: "Invoke a function synchronously and print its response payload to stdout. The event is\n" +
			"JSON given as an argument or read from --payload-file (\"-\" for stdin); without one\n" +
			"the function gets {}. A function error prints its payload and exits 1.",
		Example: "  flint invoke go-echo '{\"hi\":1}'\n" +
			"  flint invoke python-hello --tail --payload-file event.json",
		Args: rangeArgs(1, 2, "function NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in := &lambda.InvokeInput{FunctionName: aws.String(args[0])}
			switch {
			case len(args) == 2 && payloadFile != "":
				return usageErrorf(cmd, "give the event as an argument or with --payload-file, not both")
			case len(args) == 2:
				in.Payload = []byte(args[1])
			case payloadFile == "-":
				b, err := io.ReadAll(a.stdin)
				if err != nil {
					return fmt.Errorf("read payload from stdin: %w", err)
				}
				in.Payload = b
			case payloadFile != "":
				b, err := os.ReadFile(payloadFile)
				if err != nil {
					return fmt.Errorf("read payload: %w", err)
				}
				in.Payload = b
			}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			if tail {
				in.LogType = types.LogTypeTail
			}
			client, err := a.lambdaClient(ctx)
			if err != nil {
				return err
			}
			out, err := client.Invoke(ctx, in)
			if err != nil {
				return err
			}
			if tail && out.LogResult != nil {
				logs, err := base64.StdEncoding.DecodeString(*out.LogResult)
				if err != nil {
					return fmt.Errorf("decode log tail: %w", err)
				}
				if len(logs) > 0 && logs[len(logs)-1] != '\n' {
					logs = append(logs, '\n')
				}
				_, _ = a.stderr.Write(logs)
			}
			if _, err := fmt.Fprintf(a.stdout, "%s\n", out.Payload); err != nil {
				return err
			}
			if out.FunctionError != nil {
				return fmt.Errorf("function error (%s)", *out.FunctionError)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&payloadFile, "payload-file", "", "read the event from this file (\"-\" for stdin)")
	f.StringVar(&qualifier, "qualifier", "", "version or alias to invoke")
	f.BoolVarP(&tail, "tail", "l", false, "print the invocation's log tail (last 4 KB) to stderr")
	return cmd
}
