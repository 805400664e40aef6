package advisory_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A transaction lock as fn's first statement carries WithTx's BEGIN:
// checking the server does not send BEGIN ahead of it. The lock is held
// inside the transaction: another session cannot take it until COMMIT.
func TestLockTxCarriesBegin(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 2
		rt = pgtest.CountRoundTrips(cfg)
	})
	var rounds int64
	var heldElsewhere bool
	fn := func(ctx context.Context, tx pgx.Tx) error {
		if err := advisory.LockTx(ctx, tx, "carries-begin", advisory.Options{}); err != nil {
			return err
		}
		rounds = rt.Load()
		return b.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			other, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = other.Rollback(ctx) }()
			ok, err := advisory.TryLockTx(ctx, other, "carries-begin", advisory.Options{})
			heldElsewhere = !ok
			return err
		})
	}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, fn)) // prepares the statement
	rt.Reset()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, fn))
	require.Equal(t, int64(1), rounds, "the lock statement carried BEGIN")
	require.True(t, heldElsewhere)
}
