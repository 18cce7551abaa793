package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
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
		async       bool
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "invoke NAME [JSON]",
		Short: "Invoke a function and print its response",
		Long: "Invoke a function synchronously and print its response payload to stdout. The event is\n" +
			"JSON given as an argument or read from --payload-file (\"-\" for stdin); without one\n" +
			"the function gets {}. A function error prints its payload and exits 1. --async queues\n" +
			"the event instead (InvocationType Event: 202) and prints its request id.",
		Example: "  flint invoke go-echo '{\"hi\":1}'\n" +
			"  flint invoke python-hello --tail --payload-file event.json\n" +
			"  flint invoke python-hello --qualifier live --async '{\"job\":7}'",
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
			if async && tail {
				return usageErrorf(cmd, "--tail needs a synchronous invoke: an --async invoke has no log tail")
			}
			if async {
				in.InvocationType = types.InvocationTypeEvent
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
			requestID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
			var logs []byte
			if tail && out.LogResult != nil {
				if logs, err = base64.StdEncoding.DecodeString(*out.LogResult); err != nil {
					return fmt.Errorf("decode log tail: %w", err)
				}
			}
			if asJSON {
				r := invokeResult{StatusCode: out.StatusCode, RequestID: requestID, ExecutedVersion: aws.ToString(out.ExecutedVersion),
					FunctionError: aws.ToString(out.FunctionError), LogTail: string(logs)}
				if len(out.Payload) > 0 {
					if json.Valid(out.Payload) {
						r.Payload = json.RawMessage(out.Payload)
					} else {
						r.Payload, _ = json.Marshal(string(out.Payload))
					}
				}
				if err := writeJSON(a.stdout, r); err != nil {
					return err
				}
				if out.FunctionError != nil {
					return errReported // the JSON says it; exit 1 as without --json
				}
				return nil
			}
			if async {
				fmt.Fprintf(a.stderr, "queued (%d): the event runs asynchronously; flint logs %s shows it\n", out.StatusCode, args[0])
				_, err := fmt.Fprintln(a.stdout, requestID)
				return err
			}
			if len(logs) > 0 {
				if logs[len(logs)-1] != '\n' {
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
	f.BoolVar(&async, "async", false, "queue the event (InvocationType Event) and print its request id")
	f.BoolVar(&asJSON, "json", false, "print the status, request id, executed version, function error, payload and log tail as JSON")
	return cmd
}

// invokeResult is an invoke as --json prints it.
type invokeResult struct {
	StatusCode      int32           `json:"status_code"`
	RequestID       string          `json:"request_id"`
	ExecutedVersion string          `json:"executed_version,omitempty"`
	FunctionError   string          `json:"function_error,omitempty"`
	Payload         json.RawMessage `json:"payload,omitempty"`
	LogTail         string          `json:"log_tail,omitempty"`
}
