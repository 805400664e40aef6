package main

import (
	"fmt"
	"io"
	"time"

	"github.com/txkit/txkit/examples/internal/report"
)

// writeReport prints what the run did and what the checks found.
func writeReport(out io.Writer, cfg config, source string, res *results, checks []check) error {
	writes := res.orders + res.restocks
	perWrite := 0.0
	if writes > 0 {
		perWrite = float64(res.conflicts) / float64(writes)
	}
	rows := [][2]string{
		{"server", source},
		{"shoppers", fmt.Sprintf("%d, %d orders each; items on sale: %d", cfg.Shoppers, cfg.Orders, cfg.Items)},
		{"saves", saves(cfg.Naive)},
		{"elapsed", res.elapsed.Round(time.Millisecond).String()},
		{"reservations", fmt.Sprintf("%d committed, %d declined (out of stock)", res.orders, res.outOfStock)},
		{"restocks", fmt.Sprintf("%d committed", res.restocks)},
		{"conflicts", fmt.Sprintf("%d versioned saves lost the race and were retried (%.2f per write)", res.conflicts, perWrite)},
	}
	if res.err != nil {
		rows = append(rows, [2]string{"error", res.err.Error()})
	}
	return report.Write(out, rows, checks)
}

func saves(naive bool) string {
	if naive {
		return "naive: read, change, write back, no version check"
	}
	return "versioned (optimistic.Modify), conflicts retried"
}
