package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// BenchmarkRouting compares WithTx through a Cluster with WithTx on the
// primary's pool directly, for a one-UPDATE transaction (also with a
// Session, whose commit position rides in COMMIT's write) and a read-only
// one. The Cluster has one node, the primary, so both run on the same
// server and the difference is routing alone. The runners alternate in
// rounds of 100 transactions within one benchmark, so drift on a shared
// machine falls on all alike; it reports each one's time per transaction.
// Run:
//
//	go test -run '^$' -bench BenchmarkRouting -count 6 ./cluster
func BenchmarkRouting(b *testing.B) {
	ctx := context.Background()
	c, err := cluster.Open(ctx, []string{pgtest.NewDatabase(b)}, cluster.Options{Pool: pool.Options{MaxConns: 1}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	if _, err := c.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL); INSERT INTO items VALUES (1, 0)"); err != nil {
		b.Fatal(err)
	}
	p, err := c.Primary(ctx)
	if err != nil {
		b.Fatal(err)
	}
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = 1")
		return err
	}
	read := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT n FROM items WHERE id = 1").Scan(&n)
	}
	sctx := cluster.WithSession(ctx, cluster.NewSession(0))
	for _, w := range []struct {
		name string
		opts txn.Options
		fn   func(context.Context, pgx.Tx) error
	}{{"update", txn.Options{}, update}, {"read-only", txn.Options{ReadOnly: true}, read}} {
		b.Run(w.name, func(b *testing.B) {
			runners := []struct {
				name string
				op   func() error
			}{
				{"pool", func() error { return txn.WithTx(ctx, p.Pgx(), w.opts, w.fn) }},
				{"cluster", func() error { return txn.WithTx(ctx, c, w.opts, w.fn) }},
				{"cluster-session", func() error { return txn.WithTx(sctx, c, w.opts, w.fn) }},
			}
			spent := make([]time.Duration, len(runners))
			done := make([]int, len(runners))
			b.ResetTimer()
			unfinished := func(d int) bool { return d < b.N }
			for round := 0; slices.ContainsFunc(done, unfinished); round++ {
				k := round % len(runners)
				n := min(100, b.N-done[k])
				start := time.Now()
				for range n {
					if err := runners[k].op(); err != nil {
						b.Fatal(err)
					}
				}
				spent[k] += time.Since(start)
				done[k] += n
			}
			b.StopTimer()
			for i, r := range runners {
				b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), r.name+"-ns/op")
			}
		})
	}
}
