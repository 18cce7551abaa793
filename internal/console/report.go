package console

import "github.com/flint-run/flint/internal/logs"

// Report is what the console reads from one stored invocation log record (logs.ParseReport):
// its platform lines carry the request ID and version the live tail shows.
type Report = logs.ReadReport
