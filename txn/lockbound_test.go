package txn_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

// TestBoundedWaitInASwallowedSavepointRunsAgain: an attempt that follows a
// conflict bounds its lock waits, and a wait that runs out (55P03) is
// retried like a 40001. Inside a nested WithTx whose error the outer fn
// swallows, that 55P03 is rolled back to the savepoint; the attempt must
// still run again rather than commit without the nested work.
func TestBoundedWaitInASwallowedSavepointRunsAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id, n) VALUES (1, 0)")
	require.NoError(t, err)

	// Another transaction holds the row the nested call updates.
	holder, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(b.ctx)) }()
	_, err = holder.Exec(b.ctx, "UPDATE items SET n = n WHERE id = 1")
	require.NoError(t, err)

	attempts := 0
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(10)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		switch attempts {
		case 1:
			// A conflict met by one of fn's statements: the next attempt
			// begins with the lock bound.
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`)
			return err
		case 3:
			// The holder is gone before the nested call this time.
			if err := holder.Commit(ctx); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 100+attempts); err != nil {
			return err
		}
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = 1")
			return err // 55P03 on attempt 2: the bound ran out behind the holder
		}) // swallowed
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, attempts, "attempt 2 lost its nested update to the bound and must run again")
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n FROM items WHERE id = 1").Scan(&n))
	require.Equal(t, 1, n, "the nested increment committed exactly once")
	require.Equal(t, []int{1, 103}, b.ids(t), "only the committed attempt's row is there")
}
