package txn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// The retry decision follows what the server said, whatever fn did with it.
func TestRetryDecidedByWhatTheServerSaid(t *testing.T) {
	cases := map[string]func(ctx context.Context, tx pgx.Tx) error{
		"wrapped with %v": func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return fmt.Errorf("transfer failed: %v", err)
		},
		"swallowed (COMMIT answers ROLLBACK)": func(ctx context.Context, tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return nil
		},
		"follow-on 25P02 returned": func(ctx context.Context, tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, raise(pgerrcode.DeadlockDetected))
			_, err := tx.Exec(ctx, "SELECT 1")
			require.Equal(t, pgerrcode.InFailedSQLTransaction, retry.SQLState(err))
			return err
		},
		"error from a result set, swallowed": func(ctx context.Context, tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, "SELECT 1/(3 - g) FROM generate_series(1, 5) g") // fails mid-stream
			rows.Close()
			return nil
		},
	}
	for name, fail := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			attempts := 0
			err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				if attempts == 1 {
					return fail(ctx, tx)
				}
				return insert(1)(ctx, tx)
			})
			if name == "error from a result set, swallowed" {
				// Division by zero is not retryable: the swallowed error
				// surfaces at COMMIT instead of a silent success.
				require.ErrorIs(t, err, pgx.ErrTxCommitRollback)
				require.Equal(t, 1, attempts)
				require.Zero(t, b.count(t))
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2, attempts)
			require.Equal(t, 1, b.count(t))
		})
	}
}

func TestExhaustedAfterWrappedErrorsStillShowsTheServerError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(2)}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
		return fmt.Errorf("hidden: %v", err)
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, pgerrcode.SerializationFailure, retry.SQLState(err))
}

func TestContextCarriesTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, ok := txn.FromContext(b.ctx)
	require.False(t, ok)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		got, ok := txn.FromContext(ctx)
		require.True(t, ok)
		require.Same(t, tx, got)
		require.Same(t, tx, txn.Q(ctx, b.pool))
		return nil
	})
	require.NoError(t, err)
	require.Same(t, b.pool, txn.Q(b.ctx, b.pool))
}

// repo is a repository whose methods work inside or outside a transaction.
type repo struct{ db txn.Querier }

func (r repo) add(ctx context.Context, id int) error {
	_, err := txn.Q(ctx, r.db).Exec(ctx, "INSERT INTO items (id) VALUES ($1)", id)
	return err
}

func TestRepositoryMethodsJoinTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := repo{db: b.pool}
	require.NoError(t, r.add(b.ctx, 1)) // alone
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		if err := r.add(ctx, 2); err != nil {
			return err
		}
		if err := r.add(ctx, 3); err != nil {
			return err
		}
		return errors.New("roll both back")
	})
	require.Error(t, err)
	require.Equal(t, 1, b.count(t))
}

func TestNestedRunsInASavepoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	errInner := errors.New("inner fails")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		// A failing nested call is rolled back to its savepoint...
		err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(2)(ctx, tx); err != nil {
				return err
			}
			return errInner
		})
		require.ErrorIs(t, err, errInner)
		// ...even one the server failed: the outer transaction goes on.
		err = txn.WithTx(ctx, b.pool, txn.Options{}, insert(1))
		require.Equal(t, pgerrcode.UniqueViolation, retry.SQLState(err))
		// A succeeding one is kept.
		return txn.WithTx(ctx, b.pool, txn.Options{}, insert(3))
	})
	require.NoError(t, err)
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 3}, ids)
}

func TestNestedRetryBelongsToTheOutermost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	outer, inner := 0, 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		outer++
		err := txn.WithTx(ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
			inner++
			if outer == 1 {
				_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
				return err
			}
			return insert(1)(ctx, tx)
		})
		if err != nil {
			// The outer fn hides the code; the outermost WithTx still retries.
			return fmt.Errorf("inner: %v", err)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, outer)
	require.Equal(t, 2, inner, "the nested call does not retry on its own")
	require.Equal(t, 1, b.count(t))
}

func TestNestedOptionsThatCannotApplyAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	check := func(outer, inner txn.Options, refused bool) {
		t.Helper()
		err := txn.WithTx(b.ctx, b.pool, outer, func(ctx context.Context, tx pgx.Tx) error {
			return txn.WithTx(ctx, b.pool, inner, func(context.Context, pgx.Tx) error { return nil })
		})
		if refused {
			require.ErrorIs(t, err, txn.ErrInvalid)
		} else {
			require.NoError(t, err)
		}
	}
	rc := txn.Options{Isolation: isolation.ReadCommitted}
	rr := txn.Options{Isolation: isolation.RepeatableRead}
	ser := txn.Options{Isolation: isolation.Serializable}
	check(rc, ser, true)
	check(rr, ser, true)
	check(txn.Options{}, ser, true) // the server's default here is read committed
	check(ser, rr, false)           // weaker inside stronger is fine
	check(ser, ser, false)
	check(txn.Options{}, txn.Options{ReadOnly: true}, true)
	check(txn.Options{ReadOnly: true}, txn.Options{ReadOnly: true}, false)
}

func TestRequiresNewCommitsOnItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		if err := txn.WithTx(ctx, b.pool, txn.Options{RequiresNew: true}, func(ctx context.Context, tx2 pgx.Tx) error {
			got, _ := txn.FromContext(ctx)
			require.Same(t, tx2, got, "inside, ctx carries the new transaction")
			return insert(2)(ctx, tx2)
		}); err != nil {
			return err
		}
		return errors.New("outer rolls back")
	})
	require.Error(t, err)
	var ids []int
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items")
	require.NoError(t, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{2}, ids)
}

// A nested call whose ctx is cancelled still rolls back to its savepoint:
// the outer transaction stays usable.
func TestNestedWithCancelledContextLeavesTheOuterUsable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		inner, cancel := context.WithCancel(ctx)
		err := txn.WithTx(inner, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT 1/0")
			cancel()
			return err
		})
		require.Equal(t, pgerrcode.DivisionByZero, retry.SQLState(err))
		require.NotContains(t, err.Error(), "rolling back to the savepoint failed")

		inner, cancel = context.WithCancel(ctx)
		err = txn.WithTx(inner, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			cancel() // fn succeeds, but its caller gave up: undo its work
			return insert(99)(context.WithoutCancel(ctx), tx)
		})
		require.ErrorIs(t, err, context.Canceled)
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1}, ids)
}
