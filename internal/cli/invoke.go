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

// eventArg is the event given as the one argument in args or in payloadFile ("-": stdin); nil
// when neither is (the function gets {}).
func (a *app) eventArg(cmd *cobra.Command, args []string, payloadFile string) ([]byte, error) {
	switch {
	case len(args) == 1 && payloadFile != "":
		return nil, usageErrorf(cmd, "give the event as an argument or with --payload-file, not both")
	case len(args) == 1:
		return []byte(args[0]), nil
	case payloadFile == "-":
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		return b, nil
	case payloadFile != "":
		b, err := os.ReadFile(payloadFile)
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

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
			payload, err := a.eventArg(cmd, args[1:], payloadFile)
			if err != nil {
				return err
			}
			in.Payload = payload
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
