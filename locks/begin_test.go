package locks_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A locking read as fn's first statement carries WithTx's BEGIN: reading
// the connection's settings to check the query does not send BEGIN ahead
// of it. The transaction costs the read, the UPDATE and COMMIT, and the
// row is locked inside it. (A read whose wait is bounded, by
// Options.LockTimeout or ctx's deadline, goes in a batch with its
// lock_timeout, and BEGIN goes alone ahead of a batch.)
func TestLockingReadCarriesBegin(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	b := setup(t, itemsSchema, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
	})
	fn := func(ctx context.Context, tx pgx.Tx) error {
		var v int
		if err := locks.QueryRow(ctx, tx, locks.Options{}, "SELECT v FROM items WHERE id = $1", 1).Scan(&v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE items SET v = $1 WHERE id = $2", v+1, 1)
		return err
	}
	ctx := context.WithoutCancel(b.ctx)                            // no deadline: the wait is not bounded
	require.NoError(t, txn.WithTx(ctx, b.pool, txn.Options{}, fn)) // prepares the statements
	rt.Reset()
	require.NoError(t, txn.WithTx(ctx, b.pool, txn.Options{}, fn))
	require.Equal(t, int64(3), rt.Load())
	var v int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT v FROM items WHERE id = 1").Scan(&v))
	require.Equal(t, 2, v)
}
