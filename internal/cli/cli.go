// Package cli is the flint command line: one file per verb (serve, deploy, build, invoke, bench,
// ls, rm, logs, queue, keys, runtimes, version). It is the only place besides cmd/flint that reads flags
// and environment variables. Every verb but serve is a client of a running Flint and speaks the
// Lambda REST API through aws-sdk-go-v2, exactly as any other client would; it never reaches
// into server internals.
//
// Errors reach the user as one line, "flint: <message>", on stderr: exit code 1 for failures,
// 2 for usage errors, 130 when interrupted.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

const defaultEndpoint = "http://127.0.0.1:9000"

// Run runs the flint command line with args (without the program name) and returns the process
// exit code. It stops on SIGINT or SIGTERM.
func Run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stopSignals: stop}
	return a.run(ctx, args)
}

// run executes args with a's streams and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	stderr := a.stderr
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	switch {
	case errors.Is(err, errReported):
		return exitFailure
	case ctx.Err() != nil: // SIGINT or SIGTERM cut the command short
		fmt.Fprintln(stderr, "flint: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(stderr, errorLine(err, a.endpoint))
	var usage *usageError
	if errors.As(err, &usage) {
		return exitUsage
	}
	return exitFailure
}

// app holds what every verb shares: the streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	endpoint       string // base URL of the Flint to talk to, without a trailing slash
	// stopSignals, when set, restores default signal handling (a second Ctrl-C kills).
	stopSignals func()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "flint",
		Short: "Flint runs AWS Lambda functions on your own machines",
		Long: "Flint runs AWS Lambda functions on your own machines.\n\n" +
			"'flint serve' runs the Lambda API; the other commands are its clients. Any AWS SDK or\n" +
			"the AWS CLI works too: aws --endpoint-url http://127.0.0.1:9000 lambda list-functions",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf(cmd, "unknown command %q", args[0])
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			ep, err := normalizeEndpoint(a.endpoint)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			a.endpoint = ep
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	endpoint := os.Getenv("FLINT_ENDPOINT")
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	root.PersistentFlags().StringVar(&a.endpoint, "endpoint", endpoint,
		"Flint's Lambda API URL (env FLINT_ENDPOINT)")
	root.AddCommand(
		a.serveCommand(),
		a.deployCommand(),
		a.buildCommand(),
		a.invokeCommand(),
		a.benchCommand(),
		a.lsCommand(),
		a.rmCommand(),
		a.logsCommand(),
		a.queueCommand(),
		a.queuesCommand(),
		a.streamsCommand(),
		a.topicsCommand(),
		a.nodesCommand(),
		a.keysCommand(),
		a.runtimesCommand(),
		a.versionCommand(),
	)
	return root
}

// normalizeEndpoint accepts "host:port" as shorthand for "http://host:port" and drops trailing
// slashes.
func normalizeEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("--endpoint must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return "", fmt.Errorf("--endpoint %q must be an http:// or https:// URL", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// usageError is a mistake in how flint was called: exit code 2.
type usageError struct {
	cmd string // command path, for the help hint
	err error
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.cmd)
}

func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// errReported means the failure has already been written to stderr: exit 1 with nothing more.
var errReported = errors.New("failure already reported")

// exactArgs, rangeArgs and minArgs are cobra's argument checks returning usage errors.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return rangeArgs(n, n, names)
}

func rangeArgs(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usageErrorf(cmd, "missing %s", names)
		case len(args) > max:
			return usageErrorf(cmd, "unexpected argument %q", args[max])
		}
		return nil
	}
}

func minArgs(min int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			return usageErrorf(cmd, "missing %s", names)
		}
		return nil
	}
}

// errorLine renders err as the one line flint prints: an AWS API error as its code and message,
// an unreachable endpoint with a hint, anything else as its text with newlines folded.
func errorLine(err error, endpoint string) string {
	var apiErr smithy.APIError
	var opErr *net.OpError
	var msg string
	switch {
	case errors.As(err, &apiErr):
		msg = apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" {
			msg += ": " + m
		}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		msg = fmt.Sprintf("cannot reach Flint at %s (is 'flint serve' running?): %v", endpoint, opErr)
	default:
		msg = err.Error()
	}
	return "flint: " + oneLine(msg)
}

// oneLine folds a multi-line message (errors.Join, a server's text) onto one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}
