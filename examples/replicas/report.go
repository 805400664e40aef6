package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/examples/internal/report"
)

// writeReport prints what the run did and what the checks found.
func writeReport(out io.Writer, cfg config, c *cluster.Cluster, t *tally, failover, final string, checks []report.Check) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var committed, unknown int64
	for w := range t.committed {
		committed += t.committed[w]
		unknown += t.unknown[w]
	}
	st := c.Stats()
	rows := [][2]string{
		{"servers", "a primary and two streaming replicas from the local PostgreSQL binaries"},
		{"workers", fmt.Sprint(cfg.Workers)},
		{"duration", cfg.Duration.String()},
		{"replica apply delay", cfg.ApplyDelay.String()},
		{"writes committed", fmt.Sprintf("%d (%d with outcome unknown)", committed, unknown)},
		{"reads", fmt.Sprint(t.reads)},
		{"stale reads, with a Session", fmt.Sprintf("%d of %d", t.staleWith, t.readsWith)},
		{"stale reads, without", fmt.Sprintf("%d of %d", t.staleWithout, t.readsWithout)},
		{"Session reads that waited", fmt.Sprintf("%d (%d caught up on the replica, the rest went to the primary)", st.SessionWaits, st.SessionCaughtUp)},
		{"reads on the primary for want of a replica", fmt.Sprint(st.Fallbacks)},
	}
	if failover != "" {
		first := "none"
		if t.firstWriteAfterPromotion >= 0 {
			first = t.firstWriteAfterPromotion.Round(time.Millisecond).String() + " after the promotion"
		}
		rows = append(rows, [2]string{"failover", failover}, [2]string{"first write on the new primary", first})
	}
	for _, n := range c.Nodes() {
		role := n.Role.String()
		if n.Name == final {
			role += ", final primary"
		}
		if !n.Healthy {
			role += ", down"
		}
		rows = append(rows, [2]string{"node " + n.Name, fmt.Sprintf("%s: %d reads, %d writes", role, n.Reads, n.Writes)})
	}
	for i := range rows {
		rows[i][1] = strings.TrimSpace(rows[i][1])
	}
	return report.Write(out, rows, checks)
}
