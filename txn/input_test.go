package txn_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// PostgreSQL's timeouts are int32 milliseconds. A timeout it cannot hold is
// refused before anything is sent, naming the field, and nothing overflows.
func TestTimeoutsBeyondTheServerLimitAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		field string
		o     txn.Options
	}{
		{"StatementTimeout", txn.Options{StatementTimeout: 30 * 24 * time.Hour}},
		{"StatementTimeout", txn.Options{StatementTimeout: math.MaxInt64 - 1}},
		{"LockTimeout", txn.Options{LockTimeout: math.MaxInt64}},
		{"LockTimeout", txn.Options{LockTimeout: math.MinInt64}},
		{"IdleInTransactionTimeout", txn.Options{IdleInTransactionTimeout: pgtimeout.Max + time.Millisecond}},
	}
	for _, c := range cases {
		called := false
		err := txn.WithTx(b.ctx, b.pool, c.o, func(context.Context, pgx.Tx) error { called = true; return nil })
		require.ErrorIs(t, err, txn.ErrInvalid, "%+v", c.o)
		require.Contains(t, err.Error(), c.field)
		require.False(t, called)
	}

	// The limit itself is a timeout the server holds.
	got, err := txn.WithTxValue(b.ctx, b.pool, txn.Options{StatementTimeout: pgtimeout.Max, LockTimeout: pgtimeout.Max - time.Nanosecond,
		IdleInTransactionTimeout: pgtimeout.Max}, func(ctx context.Context, tx pgx.Tx) ([3]string, error) {
		var s [3]string
		err := tx.QueryRow(ctx, "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')").
			Scan(&s[0], &s[1], &s[2])
		return s, err
	})
	require.NoError(t, err)
	require.Equal(t, [3]string{"2147483647ms", "2147483647ms", "2147483647ms"}, got)
}

// A BEGIN the server refuses leaves the caller's connection idle, not inside
// a failed transaction: BEGIN carried by fn's first statement, and BEGIN
// sent alone.
func TestFailedBeginLeavesTheConnIdle(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		begin func(context.Context, txn.Beginner, string) error
	}{{"carried", txn.BeginWith}, {"alone", txn.BeginAloneWith}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			failedBeginLeavesTheConnIdle(t, c.begin)
		})
	}
}

func failedBeginLeavesTheConnIdle(t *testing.T, beginWith func(context.Context, txn.Beginner, string) error) {
	conn := pgtest.Connect(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	const badBegin = "BEGIN; SET LOCAL statement_timeout = 99999999999"
	err := beginWith(ctx, conn, badBegin)
	require.Equal(t, pgerrcode.InvalidParameterValue, retry.SQLState(err))
	require.Equal(t, byte('I'), conn.PgConn().TxStatus())
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))

	// WithTx on it runs as usual afterwards.
	require.NoError(t, txn.WithTx(ctx, conn, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	}))

	// The same through a pool: the connection goes back idle and stays.
	pool := pgtest.NewPool(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	pid := c.Conn().PgConn().PID()
	c.Release()
	require.Equal(t, pgerrcode.InvalidParameterValue, retry.SQLState(beginWith(ctx, pool, badBegin)))
	c, err = pool.Acquire(ctx)
	require.NoError(t, err)
	require.Equal(t, pid, c.Conn().PgConn().PID(), "the pool kept its connection")
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
	require.Equal(t, pgerrcode.InvalidParameterValue, retry.SQLState(beginWith(ctx, c, badBegin)))
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
	c.Release()
}

// A transaction the caller began on its own connection is the caller's:
// a WithTx that cannot begin in it does not end it.
func TestBeginInsideTheCallersFailedTransactionLeavesItAlone(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	_, err := conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT 1/0")
	require.Error(t, err)
	require.Equal(t, byte('E'), conn.PgConn().TxStatus())
	err = txn.WithTx(ctx, conn, txn.Options{Retry: retry.Never()}, func(context.Context, pgx.Tx) error { return nil })
	require.Equal(t, pgerrcode.InFailedSQLTransaction, retry.SQLState(err))
	require.Equal(t, byte('E'), conn.PgConn().TxStatus())
	_, err = conn.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)
}

// WithTxValue refuses a nil fn with the error WithTx gives.
func TestWithTxValueNilFn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := txn.WithTx(b.ctx, b.pool, txn.Options{}, nil)
	require.Error(t, want)
	require.NotPanics(t, func() {
		_, err := txn.WithTxValue[int](b.ctx, b.pool, txn.Options{}, nil)
		require.Same(t, want, err)
	})
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}
