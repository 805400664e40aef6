package locks_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/txn"
)

const selectItem = "SELECT v FROM items WHERE id = $1"

func TestQueryRefusesOutsideATransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	ctx := b.ctx

	_, err := locks.Query(ctx, b.pool, locks.Options{}, selectItem, 1)
	require.ErrorIs(t, err, locks.ErrNotInTx, "a pool runs each statement in autocommit")
	require.Contains(t, err.Error(), "*pgxpool.Pool")

	var v int
	require.ErrorIs(t, locks.QueryRow(ctx, nil, locks.Options{}, selectItem, 1).Scan(&v), locks.ErrNotInTx)

	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = locks.Query(ctx, conn, locks.Options{}, selectItem, 1)
	require.ErrorIs(t, err, locks.ErrNotInTx, "an idle connection is in autocommit")

	_, err = locks.ByKey(ctx, b.pool, pgx.Identifier{"items"}, "id", []int64{1}, locks.Options{})
	require.ErrorIs(t, err, locks.ErrNotInTx)

	// A connection inside BEGIN is a transaction.
	_, err = conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	require.NoError(t, locks.QueryRow(ctx, conn, locks.Options{}, selectItem, 1).Scan(&v))
	_, err = conn.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)

	// A finished pgx.Tx is refused by pgx itself.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.ErrorIs(t, locks.QueryRow(ctx, tx, locks.Options{}, selectItem, 1).Scan(&v), pgx.ErrTxClosed)
}

func TestQueryJoinsTheTransactionInContext(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	other := b.begin(t)

	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		// The pool is passed, as a repository would; the ctx's tx is used.
		var v int
		if err := locks.QueryRow(ctx, b.pool, locks.Options{}, selectItem, 1).Scan(&v); err != nil {
			return err
		}
		// Held until WithTx commits: another transaction cannot have it.
		err := locks.QueryRow(b.ctx, other, locks.Options{Wait: locks.NoWait}, selectItem, 1).Scan(&v)
		require.ErrorIs(t, err, locks.ErrLockNotAvailable)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, other.Rollback(b.ctx))

	// Committed: the lock is gone.
	tx := b.begin(t)
	var v int
	require.NoError(t, locks.QueryRow(b.ctx, tx, locks.Options{Wait: locks.NoWait}, selectItem, 1).Scan(&v))
}

func TestNoWaitAndSkipLocked(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "SELECT * FROM items WHERE id IN (1, 3) FOR UPDATE")
	tx := b.begin(t)

	rows, err := locks.Query(b.ctx, tx, locks.Options{Wait: locks.SkipLocked}, "SELECT id FROM items WHERE id <= 4 ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{2, 4}, ids)

	var v int
	err = locks.QueryRow(b.ctx, tx, locks.Options{Wait: locks.NoWait}, selectItem, 1).Scan(&v)
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the server's error stays reachable")
	require.Equal(t, pgerrcode.LockNotAvailable, pgErr.Code)
	require.False(t, retry.Retryable(err), "55P03 is not retried by default")
}

func TestQueryRowNoRows(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	tx := b.begin(t)
	var v int
	require.ErrorIs(t, locks.QueryRow(b.ctx, tx, locks.Options{}, selectItem, 99).Scan(&v), pgx.ErrNoRows)
}

// TestStrengthsConflictAsDocumented checks each pair of strengths against
// PostgreSQL's conflict table, which is also what shows that each clause
// reaches the server as written.
func TestStrengthsConflictAsDocumented(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	all := []locks.Strength{locks.ForUpdate, locks.ForNoKeyUpdate, locks.ForShare, locks.ForKeyShare}
	conflicts := map[[2]locks.Strength]bool{}
	for _, s := range all {
		conflicts[[2]locks.Strength{locks.ForUpdate, s}] = true
		conflicts[[2]locks.Strength{s, locks.ForUpdate}] = true
	}
	conflicts[[2]locks.Strength{locks.ForNoKeyUpdate, locks.ForNoKeyUpdate}] = true
	conflicts[[2]locks.Strength{locks.ForNoKeyUpdate, locks.ForShare}] = true
	conflicts[[2]locks.Strength{locks.ForShare, locks.ForNoKeyUpdate}] = true

	for _, held := range all {
		for _, asked := range all {
			holder, asker := b.begin(t), b.begin(t)
			var v int
			require.NoError(t, locks.QueryRow(b.ctx, holder, locks.Options{Strength: held}, selectItem, 1).Scan(&v))
			err := locks.QueryRow(b.ctx, asker, locks.Options{Strength: asked, Wait: locks.NoWait}, selectItem, 1).Scan(&v)
			if conflicts[[2]locks.Strength{held, asked}] {
				require.ErrorIs(t, err, locks.ErrLockNotAvailable, "%v then %v", held, asked)
			} else {
				require.NoError(t, err, "%v then %v", held, asked)
			}
			require.NoError(t, holder.Rollback(b.ctx))
			require.NoError(t, asker.Rollback(b.ctx))
		}
	}
}

func TestOfLocksOnlyTheNamedTables(t *testing.T) {
	t.Parallel()
	b := setup(t, `CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL);
		CREATE TABLE customers (id int PRIMARY KEY);
		INSERT INTO customers VALUES (7); INSERT INTO orders VALUES (1, 7)`)
	holder := b.begin(t)
	rows, err := locks.Query(b.ctx, holder, locks.Options{Of: []string{"o"}},
		"SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer WHERE o.id = $1", 1)
	require.NoError(t, err)
	rows.Close()
	require.NoError(t, rows.Err())

	asker := b.begin(t)
	var id int
	require.NoError(t, locks.QueryRow(b.ctx, asker, locks.Options{Wait: locks.NoWait}, "SELECT id FROM customers WHERE id = 7").Scan(&id),
		"the customer row was not locked")
	err = locks.QueryRow(b.ctx, asker, locks.Options{Wait: locks.NoWait}, "SELECT id FROM orders WHERE id = 1").Scan(&id)
	require.ErrorIs(t, err, locks.ErrLockNotAvailable, "the order row was")
}

func TestTimeoutBoundsOneCallAndIsPutBack(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")
	opts := txn.Options{LockTimeout: 7 * time.Second, Retry: retry.Never()}

	// A free row: the call succeeds and the transaction's setting is back.
	err := txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		var v int
		if err := locks.QueryRow(ctx, tx, locks.Options{LockTimeout: 50 * time.Millisecond}, selectItem, 2).Scan(&v); err != nil {
			return err
		}
		var setting string
		if err := tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&setting); err != nil {
			return err
		}
		require.Equal(t, "7s", setting, "lock_timeout must be put back after the call")
		return nil
	})
	require.NoError(t, err)

	// A held row: the call gives up after its own timeout, not the 7s.
	err = txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := locks.Query(ctx, tx, locks.Options{LockTimeout: 50 * time.Millisecond}, selectItem, 1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.LockNotAvailable, pgErr.Code)
}

// TestDeadlineBoundsTheWait: with a ctx deadline, the server ends the wait
// before pgx would break the connection, so the transaction goes on after
// a savepoint.
//
// What shows that the server gave up first is what the caller sees: the
// server's 55P03, not a ctx error, on a connection pgx kept open. Whether
// ctx has expired by the time the test looks again (after the savepoint's
// rollback) says only how long the test's goroutine waited to run.
func TestDeadlineBoundsTheWait(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")

	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		pidBefore := tx.Conn().PgConn().PID()
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := txn.WithTx(short, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
			var v int
			return locks.QueryRow(ctx, nil, locks.Options{}, selectItem, 1).Scan(&v)
		})
		require.ErrorIs(t, err, locks.ErrLockNotAvailable)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "the server gave up before the deadline")
		require.False(t, tx.Conn().IsClosed(), "pgx did not close the connection at the deadline")

		// The savepoint was rolled back to; the transaction is usable on
		// the same connection.
		var one int
		require.NoError(t, tx.QueryRow(ctx, "SELECT 1").Scan(&one))
		require.Equal(t, pidBefore, tx.Conn().PgConn().PID())
		return nil
	})
	require.NoError(t, err)
}

// TestDeadlineBoundsTheWaitOnASlowLink: the margin by which the lock_timeout
// taken from ctx's deadline undercuts it covers the round trips that
// follow it: preparing and sending the batch, the server's answer, and the
// rollback to the savepoint, all on the same ctx. If the deadline came
// first, pgx would close the connection, and the outer transaction would
// be lost. Each leg of the link is delayed by 20ms here: with a margin of
// 100ms for a 1 s deadline, the savepoint's rollback was still under way
// at the deadline and the connection was closed.
func TestDeadlineBoundsTheWaitOnASlowLink(t *testing.T) {
	t.Parallel()
	var proxy *faultproxy.Proxy
	b := setup(t, itemsSchema, func(cfg *pgxpool.Config) {
		var err error
		proxy, err = faultproxy.Interpose(&cfg.ConnConfig.Config)
		require.NoError(t, err)
		t.Cleanup(func() { _ = proxy.Close() })
	})
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")
	proxy.SetLatency(20 * time.Millisecond)

	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		pidBefore := pid(tx)
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := txn.WithTx(short, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
			var v int
			return locks.QueryRow(ctx, nil, locks.Options{}, selectItem, 1).Scan(&v)
		})
		require.ErrorIs(t, err, locks.ErrLockNotAvailable)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, tx.Conn().IsClosed(), "pgx did not close the connection at the deadline")

		var one int
		require.NoError(t, tx.QueryRow(ctx, "SELECT 1").Scan(&one), "the outer transaction goes on")
		require.Equal(t, pidBefore, pid(tx))
		return nil
	})
	require.NoError(t, err)
}

func TestStatementTimeoutIsNamed(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{StatementTimeout: 100 * time.Millisecond}, func(ctx context.Context, _ pgx.Tx) error {
		var v int
		return locks.QueryRow(ctx, b.pool, locks.Options{}, selectItem, 1).Scan(&v)
	})
	require.ErrorIs(t, err, locks.ErrStatementTimeout)
	require.NotErrorIs(t, err, locks.ErrLockNotAvailable)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.QueryCanceled, pgErr.Code)
}

// TestCancelRequestIsNamed: the server reports a statement cancelled with
// pg_cancel_backend with 57014, as for statement_timeout, and the error
// matches ErrStatementTimeout; the connection survives it.
func TestCancelRequestIsNamed(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")
	tx := b.begin(t)
	waiter := pid(tx)

	done := make(chan error, 1)
	go func() {
		var v int
		done <- locks.QueryRow(b.ctx, tx, locks.Options{}, selectItem, 1).Scan(&v)
	}()
	b.waitUntilBlocked(t, waiter)
	var cancelled bool
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT pg_cancel_backend($1)", waiter).Scan(&cancelled))
	require.True(t, cancelled)

	err := <-done
	require.ErrorIs(t, err, locks.ErrStatementTimeout)
	require.NotErrorIs(t, err, locks.ErrLockNotAvailable)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.QueryCanceled, pgErr.Code)
	require.False(t, tx.Conn().IsClosed(), "a cancel request ends the statement, not the connection")
	require.NoError(t, tx.Rollback(b.ctx))
}

func TestClassify(t *testing.T) {
	t.Parallel()
	pgErr := func(code string) error {
		return fmt.Errorf("reserve: %w", &pgconn.PgError{Code: code, Message: "test " + code})
	}
	for code, want := range map[string]error{
		pgerrcode.LockNotAvailable: locks.ErrLockNotAvailable,
		pgerrcode.DeadlockDetected: locks.ErrDeadlock,
		pgerrcode.QueryCanceled:    locks.ErrStatementTimeout,
	} {
		err := locks.Classify(pgErr(code))
		require.ErrorIs(t, err, want, code)
		var pe *pgconn.PgError
		require.ErrorAs(t, err, &pe, code)
		require.Equal(t, code, pe.Code)
		require.Equal(t, retry.Retryable(pgErr(code)), retry.Retryable(err), "classifying must not change the retry decision")
		require.Same(t, err, locks.Classify(err), "classifying twice changes nothing")
		require.Equal(t, pgErr(code).Error(), err.Error())
	}
	plain := errors.New("plain")
	require.Same(t, plain, locks.Classify(plain))
	unique := pgErr(pgerrcode.UniqueViolation)
	require.Same(t, unique, locks.Classify(unique))
	require.NoError(t, locks.Classify(nil))
}
