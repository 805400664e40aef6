package txn_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// BenchmarkHotSpot runs random transfers among 4 hot accounts at
// SERIALIZABLE with 16 workers, with the default retry policy: updates in
// random order (deadlocks) with the default lock bound on retries and with
// NoRetryLockTimeout, and in key order. One timed run per case:
//
//	go test -run '^$' -bench HotSpot -benchtime 1x ./txn
//
// BENCH_DURATION (default 5s) sets how long each case runs.
func BenchmarkHotSpot(b *testing.B) {
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && v > 0 {
		d = v
	}
	const workers = 16
	for _, c := range []struct {
		name     string
		opts     txn.Options
		keyOrder bool
	}{
		{"random-order/default", txn.Options{Isolation: isolation.Serializable}, false},
		{"random-order/NoRetryLockTimeout", txn.Options{Isolation: isolation.Serializable, NoRetryLockTimeout: true}, false},
		{"key-order/default", txn.Options{Isolation: isolation.Serializable}, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) { cfg.MaxConns = workers })
			ctx := context.Background()
			if _, err := pool.Exec(ctx, hotSchema); err != nil {
				b.Fatal(err)
			}
			var r *hotRun
			for b.Loop() {
				r = runHot(ctx, pool, c.opts, c.keyOrder, workers, 0, d)
			}
			lat := slices.Clone(r.latencies)
			slices.Sort(lat)
			p99 := lat[(len(lat)*99+99)/100-1]
			b.ReportMetric(float64(len(r.committed))/r.elapsed.Seconds(), "ok/s")
			b.ReportMetric(float64(r.failed), "failed")
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
