package txn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func TestCommitsOnSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, insert(1)))
	require.Equal(t, 1, b.count(t))
}

func TestFnErrorRollsBackAndIsReturnedUnchanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := errors.New("business rule")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		return want
	})
	require.Same(t, want, err)
	require.Zero(t, b.count(t))
}

func TestNonRetryableServerErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		return insert(1)(ctx, tx) // unique violation
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.UniqueViolation, pgErr.Code)
	require.Equal(t, 1, attempts)
	require.Zero(t, b.count(t))
}

func TestOptionsTravelInBegin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	opts := txn.Options{
		Isolation:                isolation.Serializable,
		ReadOnly:                 true,
		Deferrable:               true,
		StatementTimeout:         1500 * time.Millisecond,
		LockTimeout:              250 * time.Millisecond,
		IdleInTransactionTimeout: 10*time.Second + time.Microsecond, // rounds up
	}
	got := map[string]string{}
	err := txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		for _, name := range []string{"transaction_isolation", "transaction_read_only", "transaction_deferrable",
			"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
			var v string
			if err := tx.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
				return err
			}
			got[name] = v
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"transaction_isolation":               "serializable",
		"transaction_read_only":               "on",
		"transaction_deferrable":              "on",
		"statement_timeout":                   "1500ms",
		"lock_timeout":                        "250ms",
		"idle_in_transaction_session_timeout": "10001ms",
	}, got)

	// SET LOCAL ends with the transaction: the pooled session is unchanged.
	var st string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT current_setting('statement_timeout')").Scan(&st))
	require.Equal(t, "0", st)
}

func TestEachIsolationLevelIsApplied(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, lvl := range []isolation.Level{isolation.ReadCommitted, isolation.RepeatableRead, isolation.Serializable} {
		got, err := txn.WithTxValue(b.ctx, b.pool, txn.Options{Isolation: lvl}, func(ctx context.Context, tx pgx.Tx) (string, error) {
			var s string
			err := tx.QueryRow(ctx, "SHOW transaction_isolation").Scan(&s)
			return s, err
		})
		require.NoError(t, err)
		parsed, err := isolation.Parse(got)
		require.NoError(t, err)
		require.Equal(t, lvl, parsed)
	}
}

func TestStatementTimeoutApplies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{StatementTimeout: 50 * time.Millisecond}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_sleep(5)")
		return err
	})
	require.Equal(t, pgerrcode.QueryCanceled, retry.SQLState(err))
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []txn.Options{
		{Isolation: isolation.Level(42)},
		{Deferrable: true},
		{Deferrable: true, ReadOnly: true, Isolation: isolation.RepeatableRead},
		{StatementTimeout: -time.Second},
		{LockTimeout: -1},
	}
	for _, o := range cases {
		called := false
		err := txn.WithTx(b.ctx, b.pool, o, func(context.Context, pgx.Tx) error { called = true; return nil })
		require.ErrorIs(t, err, txn.ErrInvalid, "%+v", o)
		require.False(t, called)
	}
	// Every problem is listed in one error.
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Deferrable: true, LockTimeout: -1, LeakThreshold: -1}, insert(1))
	require.ErrorIs(t, err, txn.ErrInvalid)
	for _, want := range []string{"txn: invalid input: ", "Deferrable", "LockTimeout", "LeakThreshold"} {
		require.Contains(t, err.Error(), want)
	}
}

func TestNilArguments(t *testing.T) {
	t.Parallel()
	var pool *pgxpool.Pool
	err := txn.WithTx(context.Background(), pool, txn.Options{}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, txn.ErrInvalid)
	err = txn.WithTx(context.Background(), nil, txn.Options{}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, txn.ErrInvalid)
	b := setup(t)
	require.ErrorIs(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, nil), txn.ErrInvalid)
	_, err = txn.WithTxValue[int](b.ctx, b.pool, txn.Options{}, nil)
	require.ErrorIs(t, err, txn.ErrInvalid)
}

// TestRoundTrips checks that a WithTx on a connection whose tracer sees no
// batches costs BEGIN, fn's statements and COMMIT: the options ride in
// BEGIN, BEGIN goes alone (the tracer would not see it carried), and the
// xid capture rides with COMMIT. TestBeginRidesWithTheFirstStatement
// counts the carried case.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	tracer := &sqlTracer{}
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
		cfg.ConnConfig.Tracer = tracer
	})
	opts := txn.Options{Isolation: isolation.Serializable, StatementTimeout: time.Second, LockTimeout: time.Second}
	// Warm the connection so connecting is not counted.
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, insert(1)))

	// Each size runs twice and the second run is counted: pgx prepares a
	// statement on first use (one more round trip, with or without txkit).
	for _, stmts := range []int{0, 1, 3, 3} {
		rt.Reset()
		tracer.reset()
		err := txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			for i := range stmts {
				if _, err := tx.Exec(ctx, "UPDATE items SET n = n + $1 WHERE id = 1", i); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
		if stmts == 1 {
			continue // first use of the statement: prepared
		}
		require.Equal(t, int64(stmts+2), rt.Load(), "round trips for %d statements", stmts)
		sqls := tracer.get()
		// The tracer sees BEGIN, the statements and COMMIT (the xid query
		// rides in COMMIT's trace).
		require.Len(t, sqls, stmts+2, "statements traced: %q", sqls)
		require.True(t, strings.HasPrefix(sqls[0], "BEGIN ISOLATION LEVEL SERIALIZABLE"), sqls[0])
		require.Equal(t, "commit", sqls[len(sqls)-1])
	}

	// The same for a read-only transaction with no xid to capture.
	readOnly := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
	}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{ReadOnly: true}, readOnly))
	rt.Reset()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{ReadOnly: true}, readOnly))
	require.Equal(t, int64(3), rt.Load())
}

type sqlTracer struct {
	mu   sync.Mutex
	sqls []string
}

func (s *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	s.sqls = append(s.sqls, d.SQL)
	s.mu.Unlock()
	return ctx
}

func (s *sqlTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (s *sqlTracer) reset() { s.mu.Lock(); s.sqls = nil; s.mu.Unlock() }

func (s *sqlTracer) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sqls...)
}

func TestRetryRestartsFromBegin(t *testing.T) {
	t.Parallel()
	tracer := &sqlTracer{}
	b := setup(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = tracer })
	tracer.reset()
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Isolation: isolation.Serializable, Retry: fastRetry(5)},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if err := insert(attempts)(ctx, tx); err != nil {
				return err
			}
			if attempts < 3 {
				_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
				return err
			}
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	// Only the third attempt's row is there: the others rolled back whole.
	var ids []int
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items")
	require.NoError(t, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{3}, ids)

	begins := 0
	for _, s := range tracer.get() {
		require.NotContains(t, strings.ToUpper(s), "SAVEPOINT", "a retry must not be a ROLLBACK TO SAVEPOINT")
		if strings.HasPrefix(s, "BEGIN") {
			begins++
		}
	}
	require.Equal(t, 3, begins)
}

func TestDeadlockIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if attempts == 1 {
			_, err := tx.Exec(ctx, raise(pgerrcode.DeadlockDetected))
			return err
		}
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	require.Equal(t, 2, attempts)
	require.Equal(t, 1, b.count(t))
}

func TestExhaustionReportsTheLastPgError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(4)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
		return err
	})
	require.Equal(t, 4, attempts)
	require.ErrorIs(t, err, retry.ErrExhausted)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.SerializationFailure, pgErr.Code)
}

func TestRetryNeverMakesOneAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
		return err
	})
	require.Equal(t, 1, attempts)
	require.ErrorIs(t, err, retry.ErrExhausted)
}

// commitFailures installs a deferred constraint trigger that fails COMMIT
// with code for the first n commits that inserted into items. The counter
// is a sequence, which rollbacks do not undo.
func commitFailures(t *testing.T, b *bundle, code string, n int) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, fmt.Sprintf(`
		CREATE SEQUENCE commit_failures;
		CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('commit_failures') <= %d THEN
				RAISE EXCEPTION 'injected at commit' USING ERRCODE = '%s';
			END IF;
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON items
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit();`, n, code))
	require.NoError(t, err)
}

func TestSerializationFailureAtCommitIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	commitFailures(t, b, pgerrcode.SerializationFailure, 2)
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	require.Equal(t, 1, b.count(t))
}

func TestCommitErrorIsNeverDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	commitFailures(t, b, pgerrcode.CheckViolation, 1)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(5)}, insert(1))
	require.Equal(t, pgerrcode.CheckViolation, retry.SQLState(err))
	require.Zero(t, b.count(t))
}

func TestPanicRollsBackAndPanicsOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.PanicsWithValue(t, "boom", func() {
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(1)(ctx, tx); err != nil {
				return err
			}
			panic("boom")
		})
	})
	require.Zero(t, b.count(t))
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
	// The connection went back clean and is usable.
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, insert(2)))
	require.Equal(t, 1, b.count(t))
}

func TestCancelledContextLeavesThePoolClean(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 2 })
	for range 5 {
		ctx, cancel := context.WithCancel(b.ctx)
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				if err := insert(1)(ctx, tx); err != nil {
					return err
				}
				close(started)
				_, err := tx.Exec(ctx, "SELECT pg_sleep(30)")
				return err
			})
		}()
		<-started
		cancel()
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
	}
	// Every connection left in the pool is idle and outside a transaction.
	require.Zero(t, b.count(t))
	conns := b.pool.AcquireAllIdle(b.ctx)
	for _, c := range conns {
		require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
		c.Release()
	}
	var active int
	require.NoError(t, b.pool.QueryRow(b.ctx,
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'").Scan(&active))
	require.Zero(t, active)
}

func TestAlreadyCancelledContextDoesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	err := txn.WithTx(ctx, b.pool, txn.Options{}, func(context.Context, pgx.Tx) error {
		t.Fatal("fn must not run")
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
}

func TestWithTxOnAConnAndAPoolConn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer c.Release()
	require.NoError(t, txn.WithTx(b.ctx, c, txn.Options{}, insert(1)))
	require.NoError(t, txn.WithTx(b.ctx, c.Conn(), txn.Options{}, insert(2)))
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
	require.Equal(t, 2, b.count(t))
}

func TestManagedTxRefusesCommitAndRollback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		defer func() { _ = tx.Rollback(ctx) }() // a common habit; must be harmless
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		require.ErrorIs(t, tx.Commit(ctx), txn.ErrManaged)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, b.count(t))
}

// TestWriteSkewIsRetriedUntilTheInvariantHolds runs the on-call doctors
// write skew at SERIALIZABLE: both transactions read two doctors on call and
// take a different one off. The server aborts one at COMMIT; WithTx runs it
// again, it sees one doctor left, and declines.
func TestWriteSkewIsRetriedUntilTheInvariantHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, `CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL);
		INSERT INTO doctors VALUES ('alice', true), ('bob', true)`)
	require.NoError(t, err)

	errNotEnough := errors.New("someone must stay on call")
	read := make(chan struct{}, 2)
	bothRead := make(chan struct{})
	go func() { <-read; <-read; close(bothRead) }()
	var commitFailed [2]bool

	offCall := func(i int, name string) error {
		attempts := 0
		return txn.WithTx(b.ctx, b.pool, txn.Options{Isolation: isolation.Serializable, Retry: fastRetry(10)},
			func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				if attempts == 2 {
					// The first attempt's fn returned nil, so its failure came at COMMIT.
					commitFailed[i] = true
				}
				var n int
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM doctors WHERE on_call").Scan(&n); err != nil {
					return err
				}
				if attempts == 1 {
					read <- struct{}{}
					<-bothRead
				}
				if n < 2 {
					return errNotEnough
				}
				_, err := tx.Exec(ctx, "UPDATE doctors SET on_call = false WHERE name = $1", name)
				return err
			})
	}
	errs := make(chan error, 2)
	go func() { errs <- offCall(0, "alice") }()
	go func() { errs <- offCall(1, "bob") }()
	e1, e2 := <-errs, <-errs

	var onCall int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM doctors WHERE on_call").Scan(&onCall))
	require.Equal(t, 1, onCall, "exactly one doctor must remain on call")
	require.NotEqual(t, e1 == nil, e2 == nil, "one call succeeds, the other declines: %v / %v", e1, e2)
	if e1 != nil {
		require.ErrorIs(t, e1, errNotEnough)
	} else {
		require.ErrorIs(t, e2, errNotEnough)
	}
	require.True(t, commitFailed[0] || commitFailed[1], "the serialization failure came at COMMIT and was retried")
}
