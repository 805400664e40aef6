package txn_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// An uncontended WithTx allocates no more than the same transaction written
// by hand with pgx on the same pool as WithTx sends it: BEGIN in one batch
// with the UPDATE (pgx's Batch.BeginTx), then Commit. WithTx's retry loop,
// error recorder, context and COMMIT with its transaction-id request cost
// no allocation of their own beyond what pgx's batch needs; the batch's
// pipeline bookkeeping is most of them. Written as pgx's documentation
// writes it (BeginTx, Exec, Commit), the transaction allocates less but
// costs one round trip more. README gives the three figures.
// Not parallel: AllocsPerRun refuses to run in a parallel test.
func TestUncontendedWithTxAllocatesNoMoreThanPgx(t *testing.T) {
	pool := pgtest.NewPool(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL); INSERT INTO items VALUES (1, 0)")
	require.NoError(t, err)
	const stmt = "UPDATE items SET n = n + 1 WHERE id = $1"
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, stmt, 1)
		return err
	}
	opts := txn.Options{Isolation: isolation.ReadCommitted}
	withTx := testing.AllocsPerRun(200, func() {
		if err := txn.WithTx(ctx, pool, opts, update); err != nil {
			t.Fatal(err)
		}
	})
	batched := testing.AllocsPerRun(200, func() {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, 2)}
		b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		b.Queue(stmt, 1)
		br := c.SendBatch(ctx, b)
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if err := br.Tx().Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
	plain := testing.AllocsPerRun(200, func() {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			t.Fatal(err)
		}
		if err := update(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per transaction: WithTx %v, pgx batched %v, pgx plain %v", withTx, batched, plain)
	require.LessOrEqual(t, withTx, batched)
	require.LessOrEqual(t, withTx, 30.0, "README: an uncontended read-write WithTx allocates 30 times")
}
