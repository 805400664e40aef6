package txn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// batchTracer records the statements pgx sends, a batch's as "batch: SQL".
type batchTracer struct {
	sqlTracer
}

func (s *batchTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (s *batchTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.mu.Lock()
	s.sqls = append(s.sqls, "batch: "+d.SQL)
	s.mu.Unlock()
}

func (s *batchTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// BEGIN and the options' SET LOCALs ride with fn's first statement: a
// transaction costs one round trip for the first statement with BEGIN,
// one per later statement, and one for COMMIT; a fn that sends nothing
// costs none, and the options are in force from the first statement.
func TestBeginRidesWithTheFirstStatement(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	tracer := &batchTracer{}
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
		cfg.ConnConfig.Tracer = tracer
	})
	opts := txn.Options{Isolation: isolation.Serializable, StatementTimeout: time.Second, LockTimeout: 2 * time.Second}
	update := func(stmts int) func(ctx context.Context, tx pgx.Tx) error {
		return func(ctx context.Context, tx pgx.Tx) error {
			for i := range stmts {
				if _, err := tx.Exec(ctx, "UPDATE items SET n = n + $1 WHERE id = 1", i); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// Warm the connection: connect, and prepare the statement (its first
	// use, with BEGIN sent alone, as the attempt has SET LOCALs), then BEGIN
	// and the SET LOCALs (the first time they ride in a batch).
	for range 2 {
		require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, update(1)))
	}

	for _, stmts := range []int{0, 1, 3} {
		rt.Reset()
		tracer.reset()
		require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, update(stmts)))
		sqls := tracer.get()
		if stmts == 0 {
			require.Zero(t, rt.Load(), "a fn that sends nothing sends no BEGIN and no COMMIT")
			require.Empty(t, sqls)
			continue
		}
		require.Equal(t, int64(stmts+1), rt.Load(), "round trips for %d statements", stmts)
		require.Len(t, sqls, stmts+4, "statements traced: %q", sqls)
		require.Equal(t, "batch: BEGIN ISOLATION LEVEL SERIALIZABLE", sqls[0])
		require.True(t, strings.HasPrefix(sqls[1], "batch: SET LOCAL statement_timeout"), sqls[1])
		require.True(t, strings.HasPrefix(sqls[2], "batch: SET LOCAL lock_timeout"), sqls[2])
		require.True(t, strings.HasPrefix(sqls[3], "batch: UPDATE"), sqls[3])
		require.Equal(t, "commit", sqls[len(sqls)-1])
	}

	// The options are in force at the first statement.
	got, err := txn.WithTxValue(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) ([3]string, error) {
		var s [3]string
		err := tx.QueryRow(ctx, "SELECT current_setting('transaction_isolation'), current_setting('statement_timeout'), current_setting('lock_timeout')").Scan(&s[0], &s[1], &s[2])
		return s, err
	})
	require.NoError(t, err)
	require.Equal(t, [3]string{"serializable", "1s", "2s"}, got)

	// A read-only transaction: its query with BEGIN, then COMMIT.
	readOnly := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
	}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{ReadOnly: true}, readOnly))
	rt.Reset()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{ReadOnly: true}, readOnly))
	require.Equal(t, int64(2), rt.Load())

	// A fn that sends nothing still commits: its AfterCommit runs.
	ran := false
	rt.Reset()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		txn.AfterCommit(ctx, func(context.Context) { ran = true })
		return nil
	}))
	require.True(t, ran)
	require.Zero(t, rt.Load())
}

// Every first call, whether it carries BEGIN or sends it alone ahead of
// itself, runs inside the transaction: what it wrote is gone when fn
// fails, and kept when fn commits.
func TestFirstCallsRunInsideTheTransaction(t *testing.T) {
	t.Parallel()
	eachMode(t, modesAll, func(t *testing.T, mode pgx.QueryExecMode) {
		firstCallsRunInsideTheTransaction(t, mode)
	})
}

func firstCallsRunInsideTheTransaction(t *testing.T, mode pgx.QueryExecMode) {
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 2
		cfg.ConnConfig.DefaultQueryExecMode = mode
	})
	const ins = "INSERT INTO items (id) VALUES ($1)"
	calls := []struct {
		name string
		run  func(ctx context.Context, tx pgx.Tx, id int) error
	}{
		{"Exec", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Exec(ctx, ins, id)
			return err
		}},
		{"Exec NamedArgs", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (@id)", pgx.NamedArgs{"id": id})
			return err
		}},
		{"Exec simple protocol option", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Exec(ctx, ins, pgx.QueryExecModeSimpleProtocol, id)
			return err
		}},
		{"Exec two statements", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Exec(ctx, "SELECT 1; INSERT INTO items (id) SELECT max(id) + 1 FROM (SELECT 0 AS id UNION ALL SELECT id FROM items) s")
			return err
		}},
		{"Query", func(ctx context.Context, tx pgx.Tx, id int) error {
			rows, err := tx.Query(ctx, ins+" RETURNING id", id)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err == nil && (len(got) != 1 || got[0] != id) {
				err = errors.New("wrong rows")
			}
			return err
		}},
		{"QueryRow", func(ctx context.Context, tx pgx.Tx, id int) error {
			var got int
			return tx.QueryRow(ctx, ins+" RETURNING id", id).Scan(&got)
		}},
		{"Conn", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Conn().Exec(ctx, ins, id)
			return err
		}},
		{"Begin", func(ctx context.Context, tx pgx.Tx, id int) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, ins, id); err != nil {
				return err
			}
			return sp.Commit(ctx)
		}},
		{"SendBatch", func(ctx context.Context, tx pgx.Tx, id int) error {
			bt := &pgx.Batch{}
			bt.Queue(ins, id)
			return tx.SendBatch(ctx, bt).Close()
		}},
		{"CopyFrom", func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows([][]any{{id}}))
			return err
		}},
		{"Prepare", func(ctx context.Context, tx pgx.Tx, id int) error {
			if _, err := tx.Prepare(ctx, "ins", ins); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "ins", id)
			return err
		}},
	}
	errFail := errors.New("fail")
	for _, c := range calls {
		id := 100
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			if err := c.run(ctx, tx, id); err != nil {
				return err
			}
			return errFail
		})
		require.ErrorIs(t, err, errFail, c.name)
		require.Equal(t, 0, b.count(t), "%s: rolled back with the transaction", c.name)

		require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			return c.run(ctx, tx, id)
		}), c.name)
		require.Equal(t, 1, b.count(t), "%s: committed", c.name)
		_, err = b.pool.Exec(b.ctx, "DELETE FROM items")
		require.NoError(t, err)
	}

	// LargeObjects as the first call: the object is the transaction's.
	var oid uint32
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		lo := tx.LargeObjects()
		var err error
		oid, err = lo.Create(ctx, 0)
		if err != nil {
			return err
		}
		return errFail
	})
	require.ErrorIs(t, err, errFail)
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = $1", oid).Scan(&n))
	require.Zero(t, n, "the large object went with the rolled-back transaction")
}

// The rows of a first Query close the batch that carried BEGIN when they
// end, however they end, so the connection takes the next statement.
func TestFirstQueryLeavesTheConnectionUsable(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id) SELECT generate_series(1, 3)")
	require.NoError(t, err)
	next := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = 1")
		return err
	}
	firsts := map[string]func(ctx context.Context, tx pgx.Tx) error{
		"read to the end without Close": func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT id FROM items")
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Err()
		},
		"closed after one row": func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT id FROM items ORDER BY id")
			if err != nil {
				return err
			}
			rows.Next()
			rows.Close()
			return rows.Err()
		},
		"QueryRow with no row": func(ctx context.Context, tx pgx.Tx) error {
			var id int
			err := tx.QueryRow(ctx, "SELECT id FROM items WHERE id = $1", -1).Scan(&id)
			if !errors.Is(err, pgx.ErrNoRows) {
				return errors.New("want ErrNoRows")
			}
			return nil
		},
		"Query that fails": func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT 1/(id-id) FROM items")
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
			}
			if retry.SQLState(err) != pgerrcode.DivisionByZero {
				return errors.New("want 22012")
			}
			return nil
		},
	}
	for name, first := range firsts {
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			if err := first(ctx, tx); err != nil {
				return err
			}
			if strings.HasPrefix(name, "Query that fails") {
				return nil // the transaction has failed: COMMIT answers ROLLBACK
			}
			return next(ctx, tx)
		})
		if strings.HasPrefix(name, "Query that fails") {
			require.ErrorIs(t, err, pgx.ErrTxCommitRollback, name)
			continue
		}
		require.NoError(t, err, name)
	}
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n FROM items WHERE id = 1").Scan(&n))
	require.Equal(t, 3, n)
}

// If the BEGIN a statement carried fails, that statement gets the server's
// error, and every later call gets it too without sending anything: no
// statement of fn runs outside the transaction, and the connection is
// left idle.
func TestFailedCarriedBeginFailsEveryLaterCall(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	const badBegin = "BEGIN; SET LOCAL statement_timeout = 99999999999"
	var errs []error
	err := txn.AttemptWith(b.ctx, b.pool, badBegin, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1)
		errs = append(errs, err)
		_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 2)
		errs = append(errs, err)
		_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES (3)")
		errs = append(errs, err)
		errs = append(errs, tx.QueryRow(ctx, "INSERT INTO items (id) VALUES (4) RETURNING id").Scan(new(int)))
		rows, err := tx.Query(ctx, "INSERT INTO items (id) VALUES (5) RETURNING id")
		rows.Close()
		errs = append(errs, err)
		_, err = tx.Begin(ctx)
		errs = append(errs, err)
		errs = append(errs, tx.SendBatch(ctx, &pgx.Batch{QueuedQueries: []*pgx.QueuedQuery{{SQL: "INSERT INTO items (id) VALUES (6)"}}}).Close())
		return nil
	})
	require.NoError(t, err)
	for i, err := range errs {
		require.Equal(t, pgerrcode.InvalidParameterValue, retry.SQLState(err), "call %d: %v", i, err)
	}
	require.Equal(t, 0, b.count(t), "nothing ran")
	c, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer c.Release()
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
}

// A first statement that fails before anything ran: one pgx cannot
// encode fails fn's later calls and is not run again; one the server
// refuses while pgx prepares it ahead of the batch gets its error as it
// would without the batch, inside a transaction that began.
func TestFirstStatementFailingBeforeBeginRunsInTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	// An argument pgx cannot encode: pgx closes the connection to drop the
	// BEGIN it had queued with it, so nothing ran and nothing runs after
	// it; WithTx returns the error, after one run of fn, also under a
	// policy that retries.
	runs := 0
	var later error
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, "SELECT $1::int", make(chan int))
		_, later = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1)
		return err
	})
	require.ErrorContains(t, err, "unable to encode")
	require.ErrorContains(t, later, "did not begin")
	require.Equal(t, 1, runs)
	require.Equal(t, 0, b.count(t))

	// A syntax error: the server refused it inside the transaction, which
	// has failed, so the next statement gets 25P02.
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELEC $1::int", 1)
		require.Equal(t, pgerrcode.SyntaxError, retry.SQLState(err))
		_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 2)
		require.Equal(t, pgerrcode.InFailedSQLTransaction, retry.SQLState(err))
		return err
	})
	require.Equal(t, pgerrcode.InFailedSQLTransaction, retry.SQLState(err))
	require.Equal(t, 0, b.count(t))
}

// The query modes tests of the first statement run in: pgx's five, and
// all but DescribeExec (which describes every statement ahead of it, so
// BEGIN always goes alone there).
var (
	modesAll = []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	modesButDescribeExec = []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
)

// eachMode runs fn as a parallel subtest of t for each of modes.
func eachMode(t *testing.T, modes []pgx.QueryExecMode, fn func(t *testing.T, mode pgx.QueryExecMode)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fn(t, mode)
		})
	}
}
