package advisory_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
)

// BenchmarkAcquireRelease compares an uncontended acquire and release
// through this package with the same lock taken with raw pgx on a pool
// connection, in one run so that the figures are comparable. Both session
// forms cost two round trips; the package adds the pooler and server
// checks (inside the lock statement), the watcher goroutine and the leak
// cleanup. The fenced form also commits a write.
func BenchmarkAcquireRelease(b *testing.B) {
	var rt *pgtest.RoundTrips
	pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) { rt = pgtest.CountRoundTrips(cfg) })
	ctx := context.Background()
	// Each case reports its round trips per operation after a warm-up
	// operation (statement preparation is not counted).
	counted := func(op func()) func(b *testing.B) {
		return func(b *testing.B) {
			op()
			rt.Reset()
			b.ReportAllocs()
			for b.Loop() {
				op()
			}
			b.ReportMetric(float64(rt.Load())/float64(b.N), "roundtrips/op")
		}
	}
	key, err := advisory.Key("bench")
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	session := func(opts advisory.Options) func(b *testing.B) {
		return counted(func() {
			l, err := advisory.Acquire(ctx, pool, "bench", opts)
			must(err)
			must(l.Release(ctx))
		})
	}
	b.Run("session/txkit", session(advisory.Options{}))
	b.Run("session/txkit-fenced", session(advisory.Options{Fence: true}))
	b.Run("session/raw-pgx", counted(func() {
		c, err := pool.Acquire(ctx)
		must(err)
		_, err = c.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		must(err)
		_, err = c.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		must(err)
		c.Release()
	}))
	b.Run("tx/txkit", counted(func() {
		tx, err := pool.Begin(ctx)
		must(err)
		must(advisory.LockTx(ctx, tx, "bench", advisory.Options{}))
		must(tx.Commit(ctx))
	}))
	b.Run("tx/raw-pgx", counted(func() {
		tx, err := pool.Begin(ctx)
		must(err)
		_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key)
		must(err)
		must(tx.Commit(ctx))
	}))
}
