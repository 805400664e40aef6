package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// The tracers Open installs see batches, so txn.WithTx on the pool sends
// BEGIN with the first statement: a one-statement transaction costs two
// round trips.
func TestWithTxOnTheOpenedPoolCarriesBegin(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	p, _ := open(t, pool.Options{MaxConns: 1, Configure: func(cfg *pgxpool.Config) { rt = pgtest.CountRoundTrips(cfg) }})
	ctx := context.Background()
	_, err := p.Exec(ctx, "CREATE TABLE t (n int)")
	require.NoError(t, err)
	insert := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 1)
		return err
	}
	require.NoError(t, txn.WithTx(ctx, p.Pgx(), txn.Options{}, insert)) // prepares the statements
	rt.Reset()
	require.NoError(t, txn.WithTx(ctx, p.Pgx(), txn.Options{}, insert))
	assert.Equal(t, int64(2), rt.Load())
}

// A write refused with 25006 on a read-only server resets the pool also
// when it is the first statement of a WithTx transaction, which goes in a
// batch with its BEGIN.
func TestReadOnlyServerResetsThePoolFromABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _, _ := readOnlyDatabase(t)
	p, logs := openOn(t, dsn, pool.Options{MaxConns: 1})
	insert := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 1)
		return err
	}
	err := txn.WithTx(ctx, p.Pgx(), txn.Options{Retry: retry.Never()}, insert)
	require.Equal(t, pgerrcode.ReadOnlySQLTransaction, retry.SQLState(err))
	assert.Equal(t, 1, logs.count(resetMsg), logs.String())
}
