package txn_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A panic while pgx encodes fn's first statement's argument goes on, and
// leaves the caller's own connection usable.
func TestProbePanicEncodingFirstArgumentOwnConn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn := pgtest.Connect(t, b.pool.Config().ConnConfig.ConnString())
	require.PanicsWithValue(t, "valuer", func() {
		_ = txn.WithTx(b.ctx, conn, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1::int)", panicValuer{})
			return err
		})
	})
	require.False(t, conn.IsClosed())
	require.False(t, conn.PgConn().IsBusy(), "the caller's connection is left busy")
	var one int
	require.NoError(t, conn.QueryRow(b.ctx, "SELECT 1").Scan(&one))
}

// An argument pgx cannot encode is fn's error; it must not cost the
// caller its own connection.
func TestProbeEncodeErrorKeepsOwnConn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn := pgtest.Connect(t, b.pool.Config().ConnConfig.ConnString())
	err := txn.WithTx(b.ctx, conn, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", make(chan int))
		return err
	})
	require.ErrorContains(t, err, "unable to encode")
	require.False(t, conn.IsClosed(), "WithTx closed the caller's connection")
}

// An Exec without arguments is sent as pgx sends it, unprepared: a
// change of the table's columns between two transactions does not fail
// the second.
func TestProbeExecWithoutArgsAfterSchemaChange(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id) VALUES (1)")
	require.NoError(t, err)
	first := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT * FROM items")
		return err
	}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, first))
	_, err = b.pool.Exec(b.ctx, "ALTER TABLE items ADD COLUMN extra int")
	require.NoError(t, err)
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, first))
}

// A first statement whose own ctx had already ended fails alone, as with
// pgx: nothing was sent, and fn's later statements, on the attempt's
// live ctx, run in the transaction and commit.
func TestProbeFirstStatementOwnContextDone(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		sctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := tx.Exec(sctx, "INSERT INTO items (id) VALUES ($1)", 1); !errors.Is(err, context.Canceled) {
			return errors.New("want context.Canceled")
		}
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 2)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, 1, b.count(t))
}

// The attempt's lock_timeout bounds the first statement's wait for a
// table lock another session holds (DDL running, LOCK TABLE).
func TestProbeLockTimeoutAtFirstStatementTableLock(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 3 })
	for _, stmt := range []string{"UPDATE items SET n = n + $1 WHERE id = 1", "SELECT n + $1 FROM items"} {
		ltx, err := b.pool.Begin(b.ctx)
		require.NoError(t, err)
		_, err = ltx.Exec(b.ctx, "LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second) // a guard: lock_timeout must fire first
		err = txn.WithTx(ctx, b.pool, txn.Options{Retry: retry.Never(), LockTimeout: 100 * time.Millisecond, NoRetryLockTimeout: true},
			func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, stmt, 1)
				return err
			})
		cancel()
		_ = ltx.Rollback(b.ctx)
		require.Equal(t, pgerrcode.LockNotAvailable, retry.SQLState(err), "%s: %v", stmt, err)
	}
}

// A COPY TO STDOUT sent as an Exec without arguments as fn's first
// statement works as pgx runs it (as a simple query, the data discarded),
// and fn runs once: it is not a lost connection to run again for.
func TestProbeCopyToStdoutAsExecFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	runs := 0
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	err := txn.WithTx(ctx, b.pool, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, "COPY items TO STDOUT")
		return err
	})
	require.NoError(t, err)
	require.Equal(t, 1, runs)
	probeIdle(t, b)
}

// fn left a row unscanned (or rows open) when it returned nil: WithTx
// must not write COMMIT behind the unread result and then report the
// outcome unknown. pgx's own Commit gets "conn busy" and closes the
// connection, so nothing commits; WithTx should say so.
func TestProbeOpenResultAtCommitIsNotCommitted(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1); err != nil {
			return err
		}
		_ = tx.QueryRow(ctx, "SELECT id FROM items WHERE id = $1", 1) // never scanned
		return nil
	})
	require.Error(t, err)
	require.NotErrorIs(t, err, txn.ErrCommitUnknown, "the outcome is known: COMMIT must not have been sent")
	require.Zero(t, b.count(t), "WithTx failed, yet fn's work committed")
	probeIdle(t, b)
}

// queryOnlyTracer sees queries but not batches.
type queryOnlyTracer struct{ sqlTracer }

// A QueryRow whose row is never scanned, then another statement: as with
// pgx, the later statement may fail, but nothing commits half-done and the
// connection goes back idle.
func TestProbeQueryRowNeverScanned(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	var later error
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(2)}, func(ctx context.Context, tx pgx.Tx) error {
		_ = tx.QueryRow(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", 1) // never scanned
		_, later = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 2)
		return nil
	})
	t.Logf("WithTx: %v; later statement: %v", err, later)
	n := b.count(t)
	if err == nil {
		require.Equal(t, 2, n, "committed without all of fn's work")
	} else {
		require.Zero(t, n, "failed but something committed")
	}
	probeIdle(t, b)
}

// Rows of the first Query abandoned without Close when fn returns nil.
func TestProbeRowsAbandoned(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id) SELECT generate_series(1, 3)")
	require.NoError(t, err)
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(2)}, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "UPDATE items SET n = n + 1 RETURNING id")
		if err != nil {
			return err
		}
		rows.Next() // one row read, the rest abandoned, no Close
		return nil
	})
	t.Logf("WithTx: %v", err)
	var sum int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT sum(n) FROM items").Scan(&sum))
	if err == nil {
		require.Equal(t, 3, sum, "committed without all of the UPDATE")
	} else {
		require.Zero(t, sum, "failed but the UPDATE committed")
	}
	probeIdle(t, b)
}

// Conn, called first after the attempt's ctx ended, must still return a
// connection: pgx.Tx.Conn never returns nil.
func TestProbeConnAfterContextEnded(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	ctx, cancel := context.WithCancel(b.ctx)
	var conn *pgx.Conn
	err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		cancel()
		conn = tx.Conn()
		return ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, conn, "tx.Conn() returned nil")
	probeIdle(t, b)
}

// The same on a connection the caller owns: a cancelled ctx must not cost
// the caller its connection.
func TestProbeConnAfterContextEndedOwnConn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dsn := b.pool.Config().ConnConfig.ConnString()
	conn := pgtest.Connect(t, dsn)
	ctx, cancel := context.WithCancel(b.ctx)
	err := txn.WithTx(ctx, conn, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		cancel()
		_ = tx.Conn()
		return ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, conn.IsClosed(), "WithTx closed the caller's connection")
}

// A QueryTracer that does not see batches, inside pgx's multitracer
// (which itself implements BatchTracer): it must still see fn's first
// statement.
func TestProbeMultitracerSeesFirstStatement(t *testing.T) {
	t.Parallel()
	tracer := &queryOnlyTracer{}
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.Tracer = multitracer.New(tracer)
	})
	tracer.reset()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, insert(1)))
	sqls := tracer.get()
	found := false
	for _, s := range sqls {
		found = found || strings.HasPrefix(s, "INSERT INTO items")
	}
	require.True(t, found, "the tracer never saw fn's statement: %q", sqls)
}

// An Exec without arguments, SQL built with its values in it, costs no
// more round trips than BEGIN sent alone would (BEGIN, the statement,
// COMMIT: 3), also once pgx's statement cache is full: pgx sends such an
// Exec unprepared, so it fills no cache slot and no server memory.
func TestProbeDynamicExecWithoutArgsRoundTrips(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
		cfg.ConnConfig.StatementCacheCapacity = 8 // reached sooner than the default 512
	})
	for i := range 20 {
		rt.Reset()
		require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ("+strconv.Itoa(i)+")")
			return err
		}))
		require.LessOrEqual(t, rt.Load(), int64(3), "transaction %d", i)
	}
}

// WithTx on a caller's connection that is already inside the caller's
// transaction must not end the caller's transaction: either it refuses,
// or fn's work stays the caller's to roll back.
func TestProbeCallersOpenTransactionIsNotCommitted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn := pgtest.Connect(t, b.pool.Config().ConnConfig.ConnString())
	_, err := conn.Exec(b.ctx, "BEGIN")
	require.NoError(t, err)
	_, err = conn.Exec(b.ctx, "INSERT INTO items (id) VALUES (1)")
	require.NoError(t, err)
	err = txn.WithTx(b.ctx, conn, txn.Options{}, insert(2))
	t.Logf("WithTx: %v", err)
	require.Equal(t, byte('T'), conn.PgConn().TxStatus(), "WithTx ended the caller's transaction")
	_, err = conn.Exec(b.ctx, "ROLLBACK")
	require.NoError(t, err)
	require.Zero(t, b.count(t), "the caller rolled back, yet rows committed")
}
