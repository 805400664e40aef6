package txn_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// BenchmarkHotSpot runs random transfers among 4 hot accounts at
// SERIALIZABLE with 16 workers, with the default retry policy: updates in
// random order (deadlocks) with WithTx's defaults, with its retry queue
// off (NoRetryQueue), with both the queue and the lock bound off, and with
// cockroach-go's crdbpgx.ExecuteTx; then in key order with the defaults.
// One timed run per case:
//
//	go test -run '^$' -bench HotSpot -benchtime 1x -count 2 ./txn
//
// BENCH_DURATION (default 5s) sets how long each case runs.
func BenchmarkHotSpot(b *testing.B) {
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && v > 0 {
		d = v
	}
	const workers = 16
	withTx := func(pool *pgxpool.Pool, opts txn.Options) func(context.Context, func(context.Context, pgx.Tx) error) error {
		return func(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
			return txn.WithTx(ctx, pool, opts, fn)
		}
	}
	serializable := txn.Options{Isolation: isolation.Serializable}
	for _, c := range []struct {
		name     string
		call     func(pool *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error
		keyOrder bool
	}{
		{"random-order/default", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			return withTx(p, serializable)
		}, false},
		{"random-order/NoRetryQueue", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			o := serializable
			o.NoRetryQueue = true
			return withTx(p, o)
		}, false},
		{"random-order/NoRetryQueue+NoRetryLockTimeout", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			o := serializable
			o.NoRetryQueue, o.NoRetryLockTimeout = true, true
			return withTx(p, o)
		}, false},
		{"random-order/cockroach-go", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			return func(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
				return crdbpgx.ExecuteTx(ctx, p, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error { return fn(ctx, tx) })
			}
		}, false},
		{"key-order/default", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			return withTx(p, serializable)
		}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) { cfg.MaxConns = workers })
			ctx := context.Background()
			if _, err := pool.Exec(ctx, hotSchema); err != nil {
				b.Fatal(err)
			}
			var r *hotRun
			for b.Loop() {
				r = runHotWith(ctx, c.call(pool), c.keyOrder, workers, 0, d)
			}
			lat := slices.Clone(r.latencies)
			slices.Sort(lat)
			p99 := lat[(len(lat)*99+99)/100-1]
			var total int64
			if err := pool.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&total); err != nil {
				b.Fatal(err)
			}
			if total != 4*1000000 {
				b.Fatalf("money not conserved: %d", total)
			}
			b.ReportMetric(float64(len(r.committed))/r.elapsed.Seconds(), "ok/s")
			b.ReportMetric(float64(r.failed), "failed")
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
