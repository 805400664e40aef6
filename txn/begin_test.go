package txn_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

// TestTerminatedIdleConnectionIsRetriedAtBegin: a pooled connection whose
// backend was terminated while idle (pg_terminate_backend, a server
// restart, idle_session_timeout) answers BEGIN with FATAL 57P01. Nothing can
// have committed, so WithTx runs again on a fresh connection instead of
// returning the FATAL.
func TestTerminatedIdleConnectionIsRetriedAtBegin(t *testing.T) {
	t.Parallel()
	// BEGIN rides with fn's first statement, so the dead connection fails
	// that statement (while pgx prepares it, or when it is sent); nothing
	// ran on it, and the second run, on a fresh connection, commits.
	t.Run("carried", func(t *testing.T) {
		t.Parallel()
		terminatedIdleConnectionIsRetried(t, nil, 2)
	})
	// A tracer that sees no batches gets BEGIN alone, which meets the dead
	// connection before fn runs.
	t.Run("alone", func(t *testing.T) {
		t.Parallel()
		terminatedIdleConnectionIsRetried(t, &sqlTracer{}, 1)
	})
}

func terminatedIdleConnectionIsRetried(t *testing.T, tracer pgx.QueryTracer, runs int) {
	b := setup(t, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.Tracer = tracer
		// pgxpool pings a connection idle for over a second before handing
		// it out, which would find the dead one first on a slow machine:
		// never ping, so BEGIN is what meets it.
		c.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	})
	var pid uint32
	require.NoError(t, b.pool.AcquireFunc(b.ctx, func(c *pgxpool.Conn) error {
		pid = c.Conn().PgConn().PID()
		return nil
	}))
	killer, err := pgx.Connect(b.ctx, b.pool.Config().ConnString())
	require.NoError(t, err)
	defer func() { _ = killer.Close(context.WithoutCancel(b.ctx)) }()
	var ok bool
	require.NoError(t, killer.QueryRow(b.ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ok))
	require.True(t, ok)

	attempts := 0
	err = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (1)")
		return err
	})
	require.NoError(t, err)
	require.Equal(t, runs, attempts)
	require.Equal(t, 1, b.count(t))
}
