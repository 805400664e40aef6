package txn_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func (b *bundle) ids(t *testing.T) []int {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return ids
}

// A serialization failure inside a nested call restarts the whole
// transaction even when the outer fn drops the nested call's error: the
// savepoint rolled back, so COMMIT would succeed without the nested work.
func TestNestedSerializationFailureSwallowedByTheOuterFnIsRetried(t *testing.T) {
	for _, code := range []string{pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			outer := 0
			var callbacks []int
			err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
				outer++
				attempt := outer
				txn.AfterCommit(ctx, func(context.Context) { callbacks = append(callbacks, attempt) })
				if err := insert(100+outer)(ctx, tx); err != nil {
					return err
				}
				_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
					if outer == 1 {
						_, err := tx.Exec(ctx, raise(code))
						return err
					}
					return insert(1)(ctx, tx)
				})
				return nil // the nested error is dropped
			})
			require.NoError(t, err)
			require.Equal(t, 2, outer, "the whole transaction ran again")
			require.Equal(t, []int{1, 102}, b.ids(t), "only the second attempt committed")
			require.Equal(t, []int{2}, callbacks, "only the committed attempt's callbacks ran")
		})
	}
}

// When the attempts run out, the error says so and carries the server's
// error, and nothing commits.
func TestNestedSerializationFailureSwallowedExhausts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	outer := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
		outer++
		if err := insert(outer)(ctx, tx); err != nil {
			return err
		}
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return err
		})
		return nil
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.SerializationFailure, pgErr.Code)
	require.Equal(t, 3, outer)
	require.Empty(t, b.ids(t))

	// With retries off, one attempt and the same answer.
	outer = 0
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		outer++
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return err
		})
		return insert(7)(ctx, tx)
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, pgerrcode.SerializationFailure, retry.SQLState(err))
	require.Equal(t, 1, outer)
	require.Empty(t, b.ids(t))
}

// A non-retryable error in a nested call, rolled back to its savepoint and
// dropped, still lets the transaction commit once.
func TestNestedNonRetryableErrorSwallowedCommits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	outer := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		outer++
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, insert(1)) // unique violation
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, outer)
	require.Equal(t, []int{1}, b.ids(t))
}

// counterSetup is a one-row counter table.
func counterSetup(t *testing.T, b *bundle) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0)")
	require.NoError(t, err)
}

func (b *bundle) counter(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n))
	return n
}

// nestedIncrement is one increment at REPEATABLE READ whose UPDATE runs in a
// nested WithTx, with an outer fn that ignores the nested call's error.
// between, if set, runs after the snapshot is taken and before the UPDATE.
func nestedIncrement(b *bundle, between func(attempt int)) (attempts int, err error) {
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Isolation: isolation.RepeatableRead, Retry: fastRetry(100)},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			var n int
			if err := tx.QueryRow(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
				return err
			}
			if between != nil {
				between(attempts)
			}
			_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1")
				return err
			})
			return nil
		})
	return attempts, err
}

// The real case: at REPEATABLE READ a nested UPDATE of a row another
// transaction changed since the snapshot gets a 40001 from the server. The
// outer fn ignores it; WithTx must not report the lost increment as done.
func TestNestedLostUpdateAtRepeatableReadIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	counterSetup(t, b)

	// Deterministic: the other increment commits between this one's
	// snapshot and its UPDATE.
	attempts, err := nestedIncrement(b, func(attempt int) {
		if attempt == 1 {
			_, err := b.pool.Exec(b.ctx, "UPDATE counter SET n = n + 1 WHERE id = 1")
			require.NoError(t, err)
		}
	})
	require.NoError(t, err)
	require.Equal(t, 2, attempts, "the first attempt met a real 40001")
	require.Equal(t, 2, b.counter(t), "two successful increments")

	// Concurrent: every call that returned nil incremented once.
	var ok atomic.Int64
	var retried atomic.Int64
	pgtest.Concurrently(t, 4, 25, func() error {
		attempts, err := nestedIncrement(b, nil)
		if err == nil {
			ok.Add(1)
		}
		retried.Add(int64(attempts - 1))
		return err
	})
	t.Logf("retries: %d", retried.Load())
	require.Equal(t, 2+int(ok.Load()), b.counter(t), "the counter equals the number of successful increments")
}

// A panic in a nested call rolls back to its savepoint and drops its
// AfterCommit callbacks before it goes on: an outer fn that recovers it and
// returns nil commits only its own work.
func TestNestedPanicRecoveredByTheOuterFnRollsBackTheSavepoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ran []string
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		txn.AfterCommit(ctx, func(context.Context) { ran = append(ran, "outer") })
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		recovered := func() (r any) {
			defer func() { r = recover() }()
			_ = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				txn.AfterCommit(ctx, func(context.Context) { ran = append(ran, "nested") })
				if err := insert(2)(ctx, tx); err != nil {
					return err
				}
				panic("boom")
			})
			return nil
		}()
		require.Equal(t, "boom", recovered)
		// The transaction goes on, and a later nested call is kept.
		return txn.WithTx(ctx, b.pool, txn.Options{}, insert(3))
	})
	require.NoError(t, err)
	require.Equal(t, []int{1, 3}, b.ids(t))
	require.Equal(t, []string{"outer"}, ran)
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// A panic that is not recovered still rolls back everything and goes on.
func TestNestedPanicNotRecoveredRollsBackAll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.PanicsWithValue(t, "boom", func() {
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(1)(ctx, tx); err != nil {
				return err
			}
			return txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				if err := insert(2)(ctx, tx); err != nil {
					return err
				}
				panic("boom")
			})
		})
	})
	require.Empty(t, b.ids(t))
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}
