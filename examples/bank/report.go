package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/txkit/txkit/examples/internal/report"
)

// writeReport prints what the run did and what the checks found.
func writeReport(out io.Writer, cfg config, source string, res *results, checks []check) error {
	t := res.total
	rows := [][2]string{
		{"server", source},
		{"workers", fmt.Sprint(cfg.Workers)},
		{"accounts", fmt.Sprint(cfg.Accounts)},
		{"isolation", cfg.Isolation.String()},
		{"duration", res.elapsed.Round(time.Millisecond).String()},
		{"commits", fmt.Sprintf("%d (%.1f/s)", t.commits, float64(t.commits)/res.elapsed.Seconds())},
		{"retries", retrySummary(t)},
		{"latency per commit", latencySummary(t.latencies)},
		{"commits per worker", perWorkerSummary(res.perWorker)},
		{"failures", failureSummary(t)},
	}
	return report.Write(out, rows, checks)
}

func retrySummary(t *stats) string {
	n := t.totalRetries()
	if n == 0 {
		return "none"
	}
	per := "n/a"
	if t.commits > 0 {
		per = fmt.Sprintf("%.2f", float64(n)/float64(t.commits))
	}
	return fmt.Sprintf("%s per commit (%d: %s)", per, n, countList(t.retries))
}

// latencySummary gives the nearest-rank percentiles of the committed
// calls' latencies (from the WithTx call to its return, retries and
// backoff included).
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v", r(pct(0.50)), r(pct(0.99)), r(s[len(s)-1]))
}

func perWorkerSummary(ws []*stats) string {
	lo, hi := ws[0].commits, ws[0].commits
	for _, s := range ws[1:] {
		lo, hi = min(lo, s.commits), max(hi, s.commits)
	}
	return fmt.Sprintf("min %d, max %d", lo, hi)
}

func failureSummary(t *stats) string {
	n := 0
	for _, c := range t.failures {
		n += c
	}
	if n == 0 {
		return "none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d (%s)", n, countList(t.failures))
	// Show what an unexpected failure said; declines speak for themselves.
	for _, k := range slices.Sorted(maps.Keys(t.failures)) {
		if strings.HasPrefix(k, "declined") {
			continue
		}
		fmt.Fprintf(&b, "\n\t  e.g. %s", t.examples[k])
	}
	return b.String()
}

// countList formats counts as "a 3, b 1", largest first.
func countList(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
