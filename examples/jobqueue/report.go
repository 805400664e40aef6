package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/txkit/txkit/examples/internal/report"
)

// writeReport prints what the run did and what the checks found.
func writeReport(out io.Writer, cfg config, source string, res *results, checks []check) error {
	done := 0
	for _, n := range res.perWorker {
		done += n
	}
	rows := [][2]string{
		{"server", source},
		{"jobs", fmt.Sprint(cfg.Jobs)},
		{"workers", fmt.Sprintf("%d, claiming up to %d jobs at a time", cfg.Workers, cfg.Batch)},
		{"elapsed", res.elapsed.Round(time.Millisecond).String()},
		{"processed", fmt.Sprintf("%d (%.0f jobs/s)", done, float64(done)/res.elapsed.Seconds())},
		{"per worker", fmt.Sprintf("min %d, max %d", slices.Min(res.perWorker), slices.Max(res.perWorker))},
		{"rolled back", fmt.Sprintf("%d batches failed on purpose, their jobs claimed again", res.rollbacks)},
	}
	if res.err != nil {
		rows = append(rows, [2]string{"error", res.err.Error()})
	}
	return report.Write(out, rows, checks)
}
