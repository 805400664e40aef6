package pgbouncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgbouncer"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bundle is a database reached two ways: directly, to see what the server
// holds, and through PgBouncer.
type bundle struct {
	ctx     context.Context
	direct  *pgxpool.Pool
	bounced *pgxpool.Pool
	url     string // through PgBouncer
}

func setup(t *testing.T, mode pgbouncer.Mode) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	dsn := pgtest.NewDatabase(t)
	url := pgbouncer.Start(t, dsn, mode)
	direct, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(direct.Close)
	return &bundle{ctx: ctx, direct: direct, bounced: pgbouncer.Pool(t, url), url: url}
}

func (b *bundle) serverLocks(t *testing.T) []advisory.LockInfo {
	t.Helper()
	ls, err := advisory.Inspect(b.ctx, b.direct)
	require.NoError(t, err)
	return ls
}

// TestRawSessionLockLeaksThroughTransactionPooling shows the hazard the
// refusal guards against: a session lock taken through PgBouncer in
// transaction mode stays on the server connection after the client that
// took it has gone, held by no one.
func TestRawSessionLockLeaksThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	c, err := pgx.Connect(b.ctx, b.url)
	require.NoError(t, err)
	_, err = c.Exec(b.ctx, "SELECT pg_advisory_lock(42)", pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	require.NoError(t, c.Close(b.ctx))
	require.Len(t, b.serverLocks(t), 1, "the client is gone; its lock is not")
}

func TestSessionLockRefusedInTransactionMode(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := advisory.Acquire(b.ctx, b.bounced, "nightly", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrPooler)
	require.ErrorContains(t, err, "LockTx")
	_, err = advisory.TryAcquire(b.ctx, b.bounced, "nightly", advisory.Options{Fence: true})
	require.ErrorIs(t, err, advisory.ErrPooler)
	err = advisory.WithLock(b.ctx, b.bounced, "nightly", advisory.Options{}, func(context.Context) error { return nil })
	require.ErrorIs(t, err, advisory.ErrPooler)
	err = advisory.Lead(b.ctx, b.bounced, "nightly", advisory.Options{}, func(context.Context, int64) error { return nil })
	require.ErrorIs(t, err, advisory.ErrPooler, "Lead gives up: retrying cannot help")
	require.Empty(t, b.serverLocks(t), "nothing was locked on the way to the refusal")
}

func TestTransactionLocksWorkInTransactionMode(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	holder, err := b.bounced.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(b.ctx) }()
	require.NoError(t, advisory.LockTx(b.ctx, holder, "settle", advisory.Options{}))
	require.Len(t, b.serverLocks(t), 1)

	other, err := b.bounced.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = other.Rollback(b.ctx) }()
	ok, err := advisory.TryLockTx(b.ctx, other, "settle", advisory.Options{})
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, holder.Commit(b.ctx))
	ok, err = advisory.TryLockTx(b.ctx, other, "settle", advisory.Options{})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, other.Commit(b.ctx))
	require.Empty(t, b.serverLocks(t), "COMMIT released the locks on the server connections")

	// A timed wait works too: the timeout is set for the lock statement,
	// inside the transaction, so it does not stay behind on the server
	// connection.
	holder, err = b.bounced.Begin(b.ctx)
	require.NoError(t, err)
	require.NoError(t, advisory.LockTx(b.ctx, holder, "settle", advisory.Options{}))
	waiter, err := b.bounced.Begin(b.ctx)
	require.NoError(t, err)
	err = advisory.LockTx(b.ctx, waiter, "settle", advisory.Options{LockTimeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	require.NoError(t, waiter.Rollback(b.ctx))
	require.NoError(t, holder.Rollback(b.ctx))
}

// TestTransactionLockCounterThroughPgBouncer: contenders through PgBouncer
// in transaction mode do a read-then-write increment under LockTx; the
// exact total shows the lock excluded.
func TestTransactionLockCounterThroughPgBouncer(t *testing.T) {
	t.Parallel()
	const contenders, total = 6, 300
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)")
	require.NoError(t, err)
	pgtest.Concurrently(t, contenders, total/contenders, func() error {
		return txn.WithTx(b.ctx, b.bounced, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := advisory.LockTx(ctx, tx, "counter", advisory.Options{}); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT n FROM counter").Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE counter SET n = $1", n+1)
			return err
		})
	})
	var n int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT n FROM counter").Scan(&n))
	require.Equal(t, total, n)
}

// TestSessionModeWithSkipPoolerCheck: PgBouncer in session mode keeps a
// server connection per client, so session locks are safe there once the
// user says so; the pooler is still detected without the option.
func TestSessionModeWithSkipPoolerCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Session)
	_, err := advisory.Acquire(b.ctx, b.bounced, "nightly", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrPooler, "a pooler is detected whatever its mode")

	l, err := advisory.Acquire(b.ctx, b.bounced, "nightly", advisory.Options{SkipPoolerCheck: true, CheckInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = l.Release(context.WithoutCancel(b.ctx)) }()
	ls := b.serverLocks(t)
	require.Len(t, ls, 1)
	require.Equal(t, l.PID(), ls[0].PID, "PID is the server backend's, not PgBouncer's")
	_, err = advisory.TryAcquire(b.ctx, b.bounced, "nightly", advisory.Options{SkipPoolerCheck: true})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)

	// Loss detection works through the pooler: PgBouncer closes the client
	// connection when its server connection dies.
	var ok bool
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT pg_terminate_backend($1)", int64(l.PID())).Scan(&ok))
	require.True(t, ok)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the loss was not seen through PgBouncer")
	}
	require.ErrorIs(t, l.Release(b.ctx), advisory.ErrLockLost)
}
