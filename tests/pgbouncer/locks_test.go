package pgbouncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgbouncer"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// TestRowLocksThroughTransactionPooling takes row locks through PgBouncer
// in transaction mode: a FOR UPDATE read-modify-write from several
// goroutines loses nothing, NOWAIT reports a held row by name, and a
// per-call lock timeout is put back afterwards.
func TestRowLocksThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
	require.NoError(t, err)
	_, err = b.direct.Exec(b.ctx, "INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 3) g")
	require.NoError(t, err)

	const workers, each = 4, 20
	pgtest.Concurrently(t, workers, each, func() error {
		return txn.WithTx(b.ctx, b.bounced, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			ids, err := locks.ByKey(ctx, tx, pgx.Identifier{"accounts"}, "id", []int{3, 1, 2}, locks.Options{LockTimeout: 5 * time.Second})
			if err != nil {
				return err
			}
			for _, id := range ids {
				var bal int
				if err := locks.QueryRow(ctx, tx, locks.Options{}, "SELECT balance FROM accounts WHERE id = $1", id).Scan(&bal); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = $1 WHERE id = $2", bal+1, id); err != nil {
					return err
				}
			}
			return nil
		})
	})
	var total int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT sum(balance) FROM accounts").Scan(&total))
	require.Equal(t, 3*workers*each, total)

	// NOWAIT on a row another transaction holds.
	holder, err := b.bounced.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(b.ctx) }()
	_, err = holder.Exec(b.ctx, "SELECT 1 FROM accounts WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)
	err = txn.WithTx(b.ctx, b.bounced, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		var id int
		return locks.QueryRow(ctx, tx, locks.Options{Wait: locks.NoWait}, "SELECT id FROM accounts WHERE id = 1").Scan(&id)
	})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
}

// TestOptimisticThroughTransactionPooling runs optimistic.Modify on the
// pool through PgBouncer: concurrent increments end exact.
func TestOptimisticThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL, version bigint NOT NULL DEFAULT 0)")
	require.NoError(t, err)
	_, err = b.direct.Exec(b.ctx, "INSERT INTO counters (id, n) VALUES (1, 0)")
	require.NoError(t, err)
	type counter struct {
		ID      int
		N       int
		Version int64
	}
	table := optimistic.Table{Name: pgx.Identifier{"counters"}, Key: "id"}
	const workers, each = 4, 25
	pgtest.Concurrently(t, workers, each, func() error {
		_, err := optimistic.Modify(b.ctx, b.bounced, table, 1,
			optimistic.ModifyOptions{Retry: &retry.Policy{MaxAttempts: -1, InitialInterval: time.Millisecond, MaxInterval: 20 * time.Millisecond}},
			func(c *counter) error { c.N++; return nil })
		return err
	})
	var n int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT n FROM counters WHERE id = 1").Scan(&n))
	require.Equal(t, workers*each, n)

	// A stale version is refused through the pooler too.
	_, err = table.Update(b.ctx, b.bounced, 1, 0, map[string]any{"n": -1})
	require.ErrorIs(t, err, optimistic.ErrConflict)
}
