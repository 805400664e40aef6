package locks_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// TestDeadlinesBeyondTheServerLimit: PostgreSQL's timeouts are int32
// milliseconds (about 24.8 days). A ctx deadline further away bounds
// nothing and sets no lock_timeout; it once failed every locking read with
// 22023. An explicit Timeout beyond the limit, negative, or near
// MaxInt64 is refused before any SQL is sent.
func TestDeadlinesBeyondTheServerLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	tx := b.begin(t)

	month, cancel := context.WithTimeout(context.Background(), 30*24*time.Hour)
	defer cancel()
	forever, cancel := context.WithDeadline(context.Background(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	defer cancel()
	for _, ctx := range []context.Context{month, forever} {
		var v int
		require.NoError(t, locks.QueryRow(ctx, tx, locks.Options{}, selectItem, 1).Scan(&v))
		keys, err := locks.ByKey(ctx, tx, items, "id", []int64{3, 2}, locks.Options{})
		require.NoError(t, err)
		require.Equal(t, []int64{2, 3}, keys)
	}
	// The longest Timeout the server holds is accepted, and put back.
	var v int
	require.NoError(t, locks.QueryRow(month, tx, locks.Options{LockTimeout: pgtimeout.Max}, selectItem, 4).Scan(&v))
	var setting string
	require.NoError(t, tx.QueryRow(b.ctx, "SHOW lock_timeout").Scan(&setting))
	require.Equal(t, "0", setting)

	for _, d := range []time.Duration{-time.Second, pgtimeout.Max + time.Millisecond, 30 * 24 * time.Hour, math.MaxInt64, math.MinInt64} {
		o := locks.Options{LockTimeout: d}
		err := locks.QueryRow(b.ctx, tx, o, selectItem, 1).Scan(&v)
		require.ErrorIs(t, err, locks.ErrInvalid, "%v", d)
		_, err = locks.ByKey(b.ctx, tx, items, "id", []int64{1}, o)
		require.ErrorIs(t, err, locks.ErrInvalid, "%v", d)
	}
	// Nothing was sent: the transaction is healthy.
	require.NoError(t, tx.QueryRow(b.ctx, "SELECT 1").Scan(&v))
}

// TestBoundedWaitAbortsTheTransactionButKeepsTheConnection shows what a
// lock wait that runs out leaves behind when the call runs directly in the
// transaction, with no savepoint around it: the server's 55P03 arrives
// before the ctx deadline, so the connection stays open and healthy (pgx
// does not close it), but the transaction is aborted, as after any error:
// the next statement gets 25P02. (TestDeadlineBoundsTheWait shows the
// nested txn.WithTx that keeps the transaction going.)
func TestBoundedWaitAbortsTheTransactionButKeepsTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")
	conn, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	pidBefore := conn.Conn().PgConn().PID()

	for name, call := range map[string]func(tx pgx.Tx) error{
		"ctx deadline": func(tx pgx.Tx) error {
			short, cancel := context.WithTimeout(b.ctx, time.Second)
			defer cancel()
			var v int
			err := locks.QueryRow(short, tx, locks.Options{}, selectItem, 1).Scan(&v)
			require.NoError(t, short.Err(), "the server gave up before the deadline")
			return err
		},
		"Timeout": func(tx pgx.Tx) error {
			_, err := locks.ByKey(b.ctx, tx, items, "id", []int64{1}, locks.Options{LockTimeout: 50 * time.Millisecond})
			return err
		},
	} {
		tx, err := conn.Begin(b.ctx)
		require.NoError(t, err)
		require.ErrorIs(t, call(tx), locks.ErrLockNotAvailable, name)
		require.False(t, conn.Conn().IsClosed(), "%s: the connection survives", name)

		_, err = tx.Exec(b.ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, name)
		require.Equal(t, pgerrcode.InFailedSQLTransaction, pgErr.Code, "%s: the transaction is aborted", name)
		require.NoError(t, tx.Rollback(b.ctx))

		var pid uint32
		require.NoError(t, conn.QueryRow(b.ctx, "SELECT pg_backend_pid()").Scan(&pid))
		require.Equal(t, pidBefore, pid, "%s: the same session goes on after ROLLBACK", name)
	}
}

// TestTimeoutCostsNoRoundTrip: a per-call Timeout travels with the query
// (set, query, restore in one batch), so the call costs the one round trip
// the query alone costs, once pgx has the statements cached.
func TestTimeoutCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	b := setup(t, itemsSchema, func(cfg *pgxpool.Config) { rt = pgtest.CountRoundTrips(cfg) })
	tx := b.begin(t)
	for _, o := range []locks.Options{{}, {LockTimeout: time.Second}} {
		var v int
		for range 2 { // the first call prepares and caches the statements
			rt.Reset()
			require.NoError(t, locks.QueryRow(b.ctx, tx, o, selectItem, 1).Scan(&v))
		}
		require.Equal(t, int64(1), rt.Load(), "%+v", o)
	}
}

// TestDeadlineNeverLengthensTheTransactionsLockTimeout: the lock_timeout a
// call takes from ctx's deadline (or from Options.LockTimeout) only tightens
// the transaction's. With txn.Options.LockTimeout 200ms and 4 s left on
// ctx, the wait once lasted the 4 s less the margin. The bound checked is
// loose on purpose: it tells 200ms from 3.9 s on a loaded machine.
func TestDeadlineNeverLengthensTheTransactionsLockTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 1")

	for name, o := range map[string]locks.Options{
		"ctx deadline":     {},
		"a longer Timeout": {LockTimeout: 3 * time.Second},
	} {
		var waited time.Duration
		err := txn.WithTx(b.ctx, b.pool, txn.Options{LockTimeout: 200 * time.Millisecond, Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			short, cancel := context.WithTimeout(ctx, 4*time.Second)
			defer cancel()
			start := time.Now()
			var v int
			err := locks.QueryRow(short, tx, o, selectItem, 1).Scan(&v)
			waited = time.Since(start)
			return err
		})
		require.ErrorIs(t, err, locks.ErrLockNotAvailable, name)
		require.Less(t, waited, 2*time.Second, "%s: the transaction's 200ms lock_timeout bounds the wait", name)
	}

	// A shorter bound still tightens the transaction's, and the
	// transaction's comes back after the call.
	err := txn.WithTx(b.ctx, b.pool, txn.Options{LockTimeout: time.Hour, Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var v int
		return locks.QueryRow(bounded, tx, locks.Options{LockTimeout: 50 * time.Millisecond}, selectItem, 1).Scan(&v)
	})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
	err = txn.WithTx(b.ctx, b.pool, txn.Options{LockTimeout: time.Hour, Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		var v int
		require.NoError(t, locks.QueryRow(ctx, tx, locks.Options{LockTimeout: 50 * time.Millisecond}, selectItem, 2).Scan(&v))
		var setting string
		require.NoError(t, tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&setting))
		require.Equal(t, "1h", setting)
		return nil
	})
	require.NoError(t, err)
}
