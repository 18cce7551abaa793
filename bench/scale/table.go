package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// kind is how a figure may grow with the size.
type kind int

const (
	total   kind = iota // a total: at most linear
	perUnit             // per request or per environment: flat, judged 1,000 against 1
	perPage             // a ListFunctions page: flat, judged 1,000 against 100 (a page of 1 is no yardstick)
	perEnv              // per environment: flat, judged 1,000 against 100 give or take noise (the 1 figure is in the heap's noise)
)

// rows are the table's figures in order; noise is how far a total swings between runs on
// these machines (the Go heap's garbage, the shared cores), which the growth test allows for
// (for a figure per environment: the swing of the total it is drawn from, in its unit).
var rows = []struct {
	name  string
	kind  kind
	noise float64
}{
	{"server RSS (MiB)", total, 8},
	{"restart to first answer (ms)", total, 50},
	{"ListFunctions p50, a page (µs)", perPage, 0},
	{"warm invoke p50 (µs)", perUnit, 0},
	{"idle envs: server RSS (MiB)", total, 8},
	{"idle envs: memory per env outside the runtime (KiB)", perEnv, 16384},
	{"idle envs: of it, kernel memory per env (KiB)", perEnv, 0},
	{"idle envs: of it, server RSS per env (KiB)", perEnv, 16384},
	{"idle envs: of it, sandbox processes' Pss per env (KiB)", perEnv, 0},
	{"idle envs: runtime Pss per env (KiB)", perEnv, 0},
	{"idle envs: warm invoke p50 (µs)", perUnit, 0},
	{"idle envs: thawed invoke p50 (µs)", perUnit, 0},
}

// growth says how v (one value per size) grows and whether that is within bounds.
func growth(k kind, noise float64, v []float64) (string, bool) {
	a, b, c := v[0], v[1], v[2]
	switch k {
	case perUnit:
		r := ratio(c, a)
		return fmt.Sprintf("%.2f× (%d vs %d): %s", r, sizes[2], sizes[0], flat(r)), r <= 1.5
	case perPage:
		r := ratio(c, b)
		return fmt.Sprintf("%.2f× (%d vs %d): %s", r, sizes[2], sizes[1], flat(r)), r <= 1.5
	case perEnv:
		// The server's heap swings by MiBs between two readings: spread over the middle size's
		// environments, that is the middle figure's noise.
		r, ok := ratio(c, b), c <= 1.5*math.Max(b, 0)+noise/float64(sizes[1])
		verdict := "flat"
		if !ok {
			verdict = "GROWS"
		}
		return fmt.Sprintf("%.2f× (%d vs %d): %s", r, sizes[2], sizes[1], verdict), ok
	}
	// A total: the cost of each unit added from the middle size to the largest against that
	// from the smallest to the middle one, which may be lost in the noise.
	lo, hi := (b-a)/float64(sizes[1]-sizes[0]), (c-b)/float64(sizes[2]-sizes[1])
	ok := hi <= 2*math.Max(lo, 0)+noise/float64(sizes[1]-sizes[0]) || c-a <= 0.25*a
	verdict := "≤ linear"
	if !ok {
		verdict = "SUPER-LINEAR"
	}
	return fmt.Sprintf("%s/unit (%d→%d), %s/unit (%d→%d): %s", num(lo), sizes[0], sizes[1], num(hi), sizes[1], sizes[2], verdict), ok
}

func flat(r float64) string {
	if r <= 1.5 {
		return "flat"
	}
	return "GROWS"
}

func ratio(x, y float64) float64 {
	if x == 0 && y == 0 {
		return 1 // nothing, as before (the process sandbox has no processes of its own)
	}
	if y == 0 {
		return math.Inf(1)
	}
	return x / y
}

func num(x float64) string {
	switch a := math.Abs(x); {
	case a < 10:
		return fmt.Sprintf("%.2f", x)
	case a < 100:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

// printTable prints figure | sandbox | 1 | 100 | 1000 | growth and a verdict line.
func printTable(w io.Writer, sandboxes []string, all map[string]figures) {
	head := []string{"figure", "sandbox", fmt.Sprint(sizes[0]), fmt.Sprint(sizes[1]), fmt.Sprint(sizes[2]), "growth"}
	var lines [][]string
	var bad []string
	for _, r := range rows {
		for _, sb := range sandboxes {
			v, ok := all[sb][r.name]
			if !ok {
				continue
			}
			g, fine := growth(r.kind, r.noise, v)
			if !fine {
				bad = append(bad, r.name+" ("+sb+")")
			}
			lines = append(lines, []string{r.name, sb, num(v[0]), num(v[1]), num(v[2]), g})
		}
	}
	width := make([]int, len(head))
	for _, l := range append([][]string{head}, lines...) {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	pr := func(l []string) {
		var b strings.Builder
		for i, c := range l {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c + strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	pr(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	pr(sep)
	for _, l := range lines {
		pr(l)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "sizes: deployed functions for the first rows, idle provisioned environments for the \"idle envs\" rows")
	if len(bad) == 0 {
		fmt.Fprintln(w, "growth: totals at most linear, per-request and per-environment figures flat")
	} else {
		fmt.Fprintln(w, "growth beyond bounds:", strings.Join(bad, "; "))
	}
}
