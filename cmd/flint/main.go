// Command flint runs AWS Lambda functions on your own machines: `flint serve` is the server,
// the other verbs are its clients. See internal/cli.
package main

import (
	"os"

	"github.com/flint-run/flint/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
