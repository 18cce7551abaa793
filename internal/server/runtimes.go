package server

import (
	"log/slog"
	"strings"

	"github.com/flint-run/flint/internal/runtimes"
)

// logRuntimes says once at start which interpreter runs each runtime, and, in one warning,
// which runtimes have no interpreter of their version here: they run on the nearest version,
// or are refused on a strict node. Deploying such a function warns again (api.checkRuntime).
func logRuntimes(log *slog.Logger, t *runtimes.Table) {
	var exact, other []string
	for _, i := range t.List() {
		switch {
		case i.Exact:
			exact = append(exact, i.Runtime+"="+i.Path)
		case i.Path == "":
			other = append(other, i.Runtime+"=none")
		default:
			other = append(other, i.Runtime+"="+i.Version)
		}
	}
	log.Info("runtimes", "exact", strings.Join(exact, " "), "strict", t.Strict())
	if len(other) == 0 {
		return
	}
	msg := "runtimes without an interpreter of their version run on the nearest one found (flint runtimes shows the mapping; --runtime-path names one)"
	if t.Strict() {
		msg = "runtimes without an interpreter of their version are refused (--strict-runtimes)"
	}
	log.Warn(msg, "runtimes", strings.Join(other, " "))
}
