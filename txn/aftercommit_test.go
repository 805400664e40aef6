package txn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

func TestAfterCommitRunsOnceInOrderAfterCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got []string
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		txn.AfterCommit(ctx, func(ctx context.Context) {
			_, inTx := txn.FromContext(ctx)
			require.False(t, inTx, "callbacks run outside the transaction")
			var n int
			require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
			require.Equal(t, 1, n, "the commit is visible to the callback")
			got = append(got, "first")
		})
		txn.AfterCommit(ctx, func(context.Context) { got = append(got, "second") })
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		if attempts == 1 {
			txn.AfterCommit(ctx, func(context.Context) { got = append(got, "from the failed attempt") })
			_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return err
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"first", "second"}, got)
}

func TestAfterCommitDroppedOnRollback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := false
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		txn.AfterCommit(ctx, func(context.Context) { ran = true })
		return errors.New("no")
	})
	require.Error(t, err)
	require.False(t, ran)
}

func TestAfterCommitInARolledBackSavepointIsDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got []string
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { got = append(got, "rolled back") })
			return errors.New("inner fails")
		})
		return txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { got = append(got, "released") })
			return nil
		})
	})
	require.NoError(t, err)
	require.Equal(t, []string{"released"}, got)
}

type panicObserver struct {
	txn.NopObserver
	mu     sync.Mutex
	panics []any
}

func (o *panicObserver) CallbackPanic(_ context.Context, d txn.CallbackPanicData) {
	o.mu.Lock()
	o.panics = append(o.panics, d.Value)
	o.mu.Unlock()
}

func TestAfterCommitPanicDoesNotUndoTheCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &panicObserver{}
	ranAfter := false
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
		txn.AfterCommit(ctx, func(context.Context) { panic("callback bug") })
		txn.AfterCommit(ctx, func(context.Context) { ranAfter = true })
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	require.Equal(t, 1, b.count(t))
	require.Equal(t, []any{"callback bug"}, obs.panics)
	require.True(t, ranAfter)

	// With no observer to report to, the panic goes on, after the commit.
	require.Panics(t, func() {
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { panic("unreported") })
			return insert(2)(ctx, tx)
		})
	})
	require.Equal(t, 2, b.count(t))
}

func TestAfterCommitOutsideATransactionRunsAtOnce(t *testing.T) {
	t.Parallel()
	ran := false
	txn.AfterCommit(context.Background(), func(context.Context) { ran = true })
	require.True(t, ran)
}

// A callback registered in a nested WithTx whose savepoint was released
// waits for the outermost transaction: not run at RELEASE, and dropped when
// the outer transaction then rolls back.
func TestAfterCommitOfAReleasedSavepointIsDroppedWhenTheOuterRollsBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := false
	outerErr := errors.New("outer fails")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		require.NoError(t, txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { ran = true })
			return insert(1)(ctx, tx)
		}))
		require.False(t, ran, "not run when the savepoint is released")
		return outerErr
	})
	require.ErrorIs(t, err, outerErr)
	require.False(t, ran)
	require.Zero(t, b.count(t))
}

// With no Observer, a panicking callback does not stop the others: they
// run, then the panic goes on.
func TestAfterCommitPanicWithoutObserverRunsTheOthersFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ran []string
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { ran = append(ran, "before") })
			txn.AfterCommit(ctx, func(context.Context) { panic("first bug") })
			txn.AfterCommit(ctx, func(context.Context) { ran = append(ran, "after") })
			txn.AfterCommit(ctx, func(context.Context) { panic("second bug") })
			return insert(1)(ctx, tx)
		})
	}()
	require.NotNil(t, recovered, "the panic goes on")
	require.Contains(t, fmt.Sprint(recovered), "first bug", "the first panic is the one that goes on")
	require.Equal(t, []string{"before", "after"}, ran)
	require.Equal(t, 1, b.count(t), "the commit stands")
}
