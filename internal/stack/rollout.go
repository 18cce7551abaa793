package stack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rollout moves alias from version oldV to newV as pref says, watching newV's errors, and rolls
// back when its error rate over a step exceeds maxRate.
func (d *Deployer) rollout(ctx context.Context, name, alias, oldV, newV string, pref Preference, maxRate float64) error {
	if len(pref.Steps) == 0 {
		return d.route(ctx, name, alias, newV, "", 0)
	}
	poll := pref.Interval / 5
	poll = min(max(poll, 50*time.Millisecond), 5*time.Second)
	for _, w := range pref.Steps {
		before, err := d.versionCounts(ctx, name, newV)
		if err != nil {
			return err
		}
		if err := d.route(ctx, name, alias, oldV, newV, w); err != nil {
			return err
		}
		fmt.Fprintf(d.Out, "%-8s %s %s: %s %3.0f%% → version %s\n", "rollout", name, alias, bar(w), w*100, newV)
		deadline := time.Now().Add(pref.Interval)
		for {
			wait := min(poll, time.Until(deadline))
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					// Leave the alias where it was: an interrupted rollout must not keep shifting.
					_ = d.route(context.WithoutCancel(ctx), name, alias, oldV, "", 0)
					return ctx.Err()
				case <-t.C:
				}
			}
			now, err := d.versionCounts(ctx, name, newV)
			if err != nil {
				return err
			}
			errs, total := now.errors-before.errors, now.total-before.total
			if errs > 0 && (total == 0 || errs/total > maxRate) {
				if err := d.route(ctx, name, alias, oldV, "", 0); err != nil {
					return fmt.Errorf("roll back: %w", err)
				}
				fmt.Fprintf(d.Out, "%-8s %s %s: version %s failed %v of %v invocations; rolled back to version %s\n",
					"rollout", name, alias, newV, errs, total, oldV)
				return &RollbackError{Function: name, Alias: alias, Old: oldV, New: newV, Errors: errs, Total: total}
			}
			if !time.Now().Before(deadline) {
				break
			}
		}
	}
	if err := d.route(ctx, name, alias, newV, "", 0); err != nil {
		return err
	}
	fmt.Fprintf(d.Out, "%-8s %s %s: %s 100%% → version %s\n", "rollout", name, alias, bar(1), newV)
	return nil
}

// bar draws a 20-cell progress bar for fraction f.
func bar(f float64) string {
	n := int(f*20 + 0.5)
	return "[" + strings.Repeat("█", n) + strings.Repeat("░", 20-n) + "]"
}

type counts struct{ errors, total float64 }

var labelPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`) })

// versionCounts reads flint_invocations_total for one function version from /metrics: the
// failed invocations (outcome error or timeout) and all of them.
func (d *Deployer) versionCounts(ctx context.Context, function, version string) (counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.MetricsURL, nil)
	if err != nil {
		return counts{}, err
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return counts{}, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counts{}, fmt.Errorf("read metrics: %s", resp.Status)
	}
	var c counts
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "flint_invocations_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		l := map[string]string{}
		for _, m := range labelPattern().FindAllStringSubmatch(labels, -1) {
			l[m[1]] = m[2]
		}
		if l["function"] != function || l["version"] != version {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		c.total += v
		if o := l["outcome"]; o == "error" || o == "timeout" {
			c.errors += v
		}
	}
	if err := sc.Err(); err != nil {
		return counts{}, fmt.Errorf("read metrics: %w", err)
	}
	return c, nil
}
