package advisory_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// TestMutualExclusionCounter: 16 contenders make 2000 acquisitions between
// them, each doing a non-atomic increment under the lock: read the
// counter, sleep, write it back plus one. Any overlap of two holders loses
// an increment, so the exact final count shows that no two ever held the
// lock at once. The process-side count of concurrent holders must never
// pass one either.
func TestMutualExclusionCounter(t *testing.T) {
	t.Parallel()
	const contenders, total = 16, 2000
	// One connection per waiting contender, plus one for the holder's
	// read and write.
	b := setup(t, func(c *pgxpool.Config) { c.MaxConns = contenders + 2 })
	_, err := b.pool.Exec(b.ctx, "CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)")
	require.NoError(t, err)

	var inside, maxInside atomic.Int32
	pgtest.Concurrently(t, contenders, total/contenders, func() error {
		return advisory.WithLock(b.ctx, b.pool, "counter", advisory.Options{}, func(ctx context.Context) error {
			if n := inside.Add(1); n > maxInside.Load() {
				maxInside.Store(n)
			}
			defer inside.Add(-1)
			var n int
			if err := b.pool.QueryRow(ctx, "SELECT n FROM counter").Scan(&n); err != nil {
				return err
			}
			time.Sleep(50 * time.Microsecond)
			_, err := b.pool.Exec(ctx, "UPDATE counter SET n = $1", n+1)
			return err
		})
	})
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n FROM counter").Scan(&n))
	require.Equal(t, total, n, "every increment made under the lock survived")
	require.Equal(t, int32(1), maxInside.Load())
	require.Empty(t, b.locks(t))
}

// TestMutualExclusionCounterTx is the same invariant for transaction
// locks: the lock, the read and the write share one transaction.
func TestMutualExclusionCounterTx(t *testing.T) {
	t.Parallel()
	const contenders, total = 8, 400
	b := setup(t, func(c *pgxpool.Config) { c.MaxConns = contenders })
	_, err := b.pool.Exec(b.ctx, "CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)")
	require.NoError(t, err)
	pgtest.Concurrently(t, contenders, total/contenders, func() error {
		return txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := advisory.LockTx(ctx, tx, "counter", advisory.Options{}); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT n FROM counter").Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE counter SET n = $1", n+1)
			return err
		})
	})
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n FROM counter").Scan(&n))
	require.Equal(t, total, n)
}
