package advisory_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// begin starts a transaction on b's pool that the test ends; it is rolled
// back at cleanup if the test did not end it.
func (b *bundle) begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(b.ctx)) })
	return tx
}

func TestLockTxHeldUntilTransactionEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	holder := b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, holder, "settle", advisory.Options{}))

	other := b.begin(t)
	ok, err := advisory.TryLockTx(b.ctx, other, "settle", advisory.Options{})
	require.NoError(t, err)
	require.False(t, ok, "held by the first transaction")
	var one int
	require.NoError(t, other.QueryRow(b.ctx, "SELECT 1").Scan(&one), "a failed try leaves the transaction usable")
	_, err = advisory.TryAcquire(b.ctx, b.pool, "settle", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrNotAcquired, "transaction and session locks share keys")

	require.NoError(t, holder.Commit(b.ctx))
	ok, err = advisory.TryLockTx(b.ctx, other, "settle", advisory.Options{})
	require.NoError(t, err)
	require.True(t, ok, "COMMIT released it")
	require.NoError(t, other.Rollback(b.ctx))
	require.Empty(t, b.locks(t), "ROLLBACK released it")
}

func TestLockTxInsideWithTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if err := advisory.LockTx(ctx, tx, "transfer", advisory.Options{}); err != nil {
			return err
		}
		require.Len(t, b.locks(t, "transfer"), 1)
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, b.locks(t))
}

func TestLockTxShared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r1, r2, w := b.begin(t), b.begin(t), b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, r1, "catalog", advisory.Options{Shared: true}))
	ok, err := advisory.TryLockTx(b.ctx, r2, "catalog", advisory.Options{Shared: true})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = advisory.TryLockTx(b.ctx, w, "catalog", advisory.Options{})
	require.NoError(t, err)
	require.False(t, ok)
}

func TestLockTxTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	holder := b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, holder, "ledger", advisory.Options{}))

	t.Run("Timeout option", func(t *testing.T) {
		tx := b.begin(t)
		err := advisory.LockTx(b.ctx, tx, "ledger", advisory.Options{LockTimeout: 100 * time.Millisecond})
		require.ErrorIs(t, err, advisory.ErrNotAcquired)
		require.Equal(t, pgerrcode.LockNotAvailable, retry.SQLState(err), "the server's error is kept, for retry policies")
		require.NoError(t, tx.Rollback(b.ctx))
	})
	t.Run("ctx deadline", func(t *testing.T) {
		tx := b.begin(t)
		ctx, cancel := context.WithTimeout(b.ctx, 100*time.Millisecond)
		defer cancel()
		err := advisory.LockTx(ctx, tx, "ledger", advisory.Options{})
		require.ErrorIs(t, err, advisory.ErrNotAcquired)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, tx.Rollback(b.ctx))
	})
	t.Run("the transaction's own lock_timeout is restored", func(t *testing.T) {
		tx := b.begin(t)
		_, err := tx.Exec(b.ctx, "SET LOCAL lock_timeout = '7s'")
		require.NoError(t, err)
		require.NoError(t, advisory.LockTx(b.ctx, tx, "other", advisory.Options{LockTimeout: time.Second}))
		var v string
		require.NoError(t, tx.QueryRow(b.ctx, "SHOW lock_timeout").Scan(&v))
		require.Equal(t, "7s", v)
	})
	t.Run("a shorter lock_timeout of the transaction is not lengthened", func(t *testing.T) {
		tx := b.begin(t)
		_, err := tx.Exec(b.ctx, "SET LOCAL lock_timeout = '50ms'")
		require.NoError(t, err)
		start := time.Now()
		err = advisory.LockTx(b.ctx, tx, "ledger", advisory.Options{LockTimeout: time.Minute})
		require.ErrorIs(t, err, advisory.ErrNotAcquired)
		require.Less(t, time.Since(start), 30*time.Second)
	})
}

// TestLockTxCancelKeepsConnection: a cancelled wait aborts the
// transaction, but through a cancel request, so the connection survives
// and goes back to the pool after ROLLBACK.
func TestLockTxCancelKeepsConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	holder := b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, holder, "ledger", advisory.Options{}))

	tx := b.begin(t)
	pid := tx.Conn().PgConn().PID()
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- advisory.LockTx(ctx, tx, "ledger", advisory.Options{}) }()
	require.Equal(t, pid, b.waiting(t, "ledger"))
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.QueryCanceled, pgErr.Code)
	require.False(t, tx.Conn().IsClosed())
	require.NoError(t, tx.Rollback(b.ctx))
	require.True(t, b.alive(t, pid))
}

func TestLockTxRetriedByPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	holder := b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, holder, "nightly", advisory.Options{}))
	attempts := 0
	policy := &retry.Policy{MaxAttempts: 20, InitialInterval: 10 * time.Millisecond, RetryLockNotAvailable: true}
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: policy}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if attempts == 2 {
			// Let the holder go once the first attempt has timed out.
			require.NoError(t, holder.Commit(b.ctx))
		}
		return advisory.LockTx(ctx, tx, "nightly", advisory.Options{LockTimeout: 20 * time.Millisecond})
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, attempts, 2)
}
