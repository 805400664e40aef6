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
//	go test -run '^$' -bench HotSpot -benchtime 1x -count 3 ./txn
//
// BENCH_DURATION (default 5s) sets how long each case runs. Besides ok/s,
// calls that failed and p99 latency (also without the calls that began in
// the first second), the two default cases report where the time of a call
// went, through an Observer: for all calls (mean-*) and for the slowest 1%
// (p99calls-*), the mean time per call spent waiting for a turn (queue),
// in attempts that lost (lost, lock waits included), in backoff, and in
// the attempt that ended the call (last); the mean attempts per call and
// attempts running at once, and the conflicts per second by SQLSTATE.
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
	var obs *breakdown // the current case's, when it observes
	observed := func(o txn.Options) txn.Options {
		obs = newBreakdown()
		o.Observer = obs
		return o
	}
	for _, c := range []struct {
		name     string
		call     func(pool *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error
		keyOrder bool
	}{
		{"random-order/default", func(p *pgxpool.Pool) func(context.Context, func(context.Context, pgx.Tx) error) error {
			return withTx(p, observed(serializable))
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
			return withTx(p, observed(serializable))
		}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) { cfg.MaxConns = workers })
			ctx := context.Background()
			if _, err := pool.Exec(ctx, hotSchema); err != nil {
				b.Fatal(err)
			}
			var r *hotRun
			obs = nil
			for b.Loop() {
				r = runHotWith(ctx, c.call(pool), c.keyOrder, workers, 0, d)
			}
			p99 := percentile99(r.latencies)
			// The same without the calls that began in the first second:
			// until a first conflict, every call of the transaction runs
			// at once, without turns or a bound on its lock waits, and
			// those caught in a deadlock wait deadlock_timeout (1 s).
			var warm []time.Duration
			for i, l := range r.latencies {
				if r.starts[i] >= time.Second {
					warm = append(warm, l)
				}
			}
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
			b.ReportMetric(float64(percentile99(warm))/float64(time.Millisecond), "p99-after-1s-ms")
			if obs != nil {
				slow, all, attempts := obs.report()
				b.ReportMetric(attempts, "attempts/call")
				b.ReportMetric(obs.concurrency(), "running")
				for i, part := range []string{"queue", "lost", "backoff", "last"} {
					b.ReportMetric(slow[i], "p99calls-"+part+"-ms")
					b.ReportMetric(all[i], "mean-"+part+"-ms")
				}
				for _, code := range []string{"40001", "40P01", "55P03"} {
					b.ReportMetric(float64(obs.codes[code])/r.elapsed.Seconds(), code+"/s")
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// percentile99 is the 99th percentile of ds, or 0 for none.
func percentile99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}
