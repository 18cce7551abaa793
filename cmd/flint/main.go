// Command flint runs AWS Lambda functions on your own machines: `flint serve` is the server,
// the other verbs are its clients. See internal/cli.
package main

import (
	"os"
	_ "time/tzdata" // schedules name IANA time zones; do not depend on the host's zone files

	"github.com/flint-run/flint/internal/cli"
	"github.com/flint-run/flint/internal/sandbox/linux"
)

func main() {
	linux.Init() // a re-executed sandbox init runs here and never returns
	os.Exit(cli.Run(os.Args[1:]))
}
