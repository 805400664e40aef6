package txn_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// Probes of BEGIN riding with fn's first statement: first statements a
// careless or hostile fn may send, and the promises that must hold
// whatever it sends: nothing runs outside the transaction, and the
// connection goes back idle and usable.

// probeIdle fails t unless the pool's only connection is idle outside a
// transaction and answers a query.
func probeIdle(t *testing.T, b *bundle) {
	t.Helper()
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool), "a connection is still held")
	c, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer c.Release()
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus(), "the connection is inside a transaction")
	var one int
	require.NoError(t, c.QueryRow(b.ctx, "SELECT 1").Scan(&one))
}

func probeDelete(t *testing.T, b *bundle) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, "DELETE FROM items")
	require.NoError(t, err)
}

// fn panics after its first statement: the panic goes on, nothing
// commits, and the connection goes back idle, however the first statement
// was left.
func TestProbePanicAfterFirstStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	firsts := map[string]func(ctx context.Context, tx pgx.Tx){
		"Exec": func(ctx context.Context, tx pgx.Tx) {
			_, _ = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1)
		},
		"QueryRow scanned": func(ctx context.Context, tx pgx.Tx) {
			_ = tx.QueryRow(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", 1).Scan(new(int))
		},
		"QueryRow not scanned": func(ctx context.Context, tx pgx.Tx) {
			_ = tx.QueryRow(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", 1)
		},
		"Query open": func(ctx context.Context, tx pgx.Tx) {
			_, _ = tx.Query(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", 1)
		},
		"Exec DDL": func(ctx context.Context, tx pgx.Tx) {
			_, _ = tx.Exec(ctx, "INSERT INTO items (id) VALUES (1)")
		},
	}
	for name, first := range firsts {
		require.PanicsWithValue(t, "boom", func() {
			_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				first(ctx, tx)
				panic("boom")
			})
		}, name)
		require.Zero(t, b.count(t), name)
		probeIdle(t, b)
	}
}

// ctx ends before, during and right after the first statement.
func TestProbeContextAroundFirstStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })

	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(b.ctx)
		var later error
		err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			cancel()
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1)
			_, later = tx.Exec(context.WithoutCancel(ctx), "INSERT INTO items (id) VALUES ($1)", 2)
			if err == nil {
				return errors.New("the first statement ran with its ctx cancelled")
			}
			return nil
		})
		// As with pgx: the statement whose ctx had ended fails alone, the
		// later one runs inside the transaction, and the cancelled call
		// rolls it back.
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, later)
		require.Zero(t, b.count(t))
		probeIdle(t, b)
	})

	t.Run("cancelled during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(b.ctx)
		defer cancel()
		err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			time.AfterFunc(200*time.Millisecond, cancel)
			_, err := tx.Exec(ctx, "INSERT INTO items (id) SELECT $1 FROM pg_sleep(5)", 1)
			return err
		})
		require.Error(t, err)
		require.Zero(t, b.count(t))
		probeIdle(t, b)
	})

	t.Run("cancelled after, fn returns nil", func(t *testing.T) {
		ctx, cancel := context.WithCancel(b.ctx)
		err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 1)
			cancel()
			return err
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, b.count(t))
		probeIdle(t, b)
	})

	t.Run("statement's own ctx cancelled", func(t *testing.T) {
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
			sctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := tx.Exec(sctx, "INSERT INTO items (id) VALUES ($1)", 1)
			if err == nil {
				return errors.New("ran with a cancelled ctx")
			}
			_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 2)
			return err
		})
		t.Logf("WithTx: %v", err)
		n := b.count(t)
		if err == nil {
			require.Equal(t, 1, n)
		} else {
			require.Zero(t, n)
		}
		probeIdle(t, b)
	})
}

// First statements that are themselves transaction control or settings.
func TestProbeTransactionControlFirst(t *testing.T) {
	t.Parallel()
	eachMode(t, modesButDescribeExec, func(t *testing.T, mode pgx.QueryExecMode) {
		probeTransactionControlFirst(t, mode)
	})
}

func probeTransactionControlFirst(t *testing.T, mode pgx.QueryExecMode) {
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.DefaultQueryExecMode = mode
	})
	opts := txn.Options{Retry: retry.Never(), StatementTimeout: 5 * time.Second}

	// SET TRANSACTION must come before any query of the transaction: as
	// fn's first statement it must still work, and hold.
	got, err := txn.WithTxValue(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) (string, error) {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"); err != nil {
			return "", err
		}
		var s string
		err := tx.QueryRow(ctx, "SELECT current_setting('transaction_isolation')").Scan(&s)
		return s, err
	})
	require.NoError(t, err)
	require.Equal(t, "serializable", got)

	// SET LOCAL first: in force for the rest of the transaction only.
	got, err = txn.WithTxValue(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) (string, error) {
		if _, err := tx.Exec(ctx, "SET LOCAL application_name = 'probe'"); err != nil {
			return "", err
		}
		var s string
		err := tx.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&s)
		return s, err
	})
	require.NoError(t, err)
	require.Equal(t, "probe", got)
	var app string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT current_setting('application_name')").Scan(&app))
	require.NotEqual(t, "probe", app, "SET LOCAL outlived its transaction")

	// SAVEPOINT first, rolled back to, then more work.
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SAVEPOINT x"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (1)"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT x"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (2)")
		return err
	}))
	var ids []int
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items")
	require.NoError(t, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{2}, ids)
	probeDelete(t, b)

	// BEGIN first: a warning, nothing else.
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "BEGIN"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (1)")
		return err
	}))
	require.Equal(t, 1, b.count(t))
	probeDelete(t, b)
	probeIdle(t, b)

	// ROLLBACK / COMMIT first, then a statement, then fn fails: the later
	// statement must not have run outside a transaction.
	for _, end := range []string{"ROLLBACK", "COMMIT"} {
		var later error
		err := txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, end); err != nil {
				return err
			}
			_, later = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 7)
			return errors.New("fail")
		})
		require.Error(t, err)
		t.Logf("%s first: later statement: %v", end, later)
		require.Zero(t, b.count(t), "%s first: a later statement committed outside the transaction", end)
		probeIdle(t, b)
	}
}

// LISTEN or NOTIFY alone: the transaction commits them.
func TestProbeListenNotifyOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 2 })
	listener, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer listener.Release()
	require.NoError(t, txn.WithTx(b.ctx, listener, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "LISTEN probe")
		return err
	}))
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "NOTIFY probe, 'hello'")
		return err
	}))
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	n, err := listener.Conn().WaitForNotification(ctx)
	require.NoError(t, err)
	require.Equal(t, "hello", n.Payload)
	// A NOTIFY whose transaction rolls back is not delivered.
	errFail := errors.New("fail")
	require.ErrorIs(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_notify('probe', $1)", "rolled back")
		if err != nil {
			return err
		}
		return errFail
	}), errFail)
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "NOTIFY probe, 'second'")
		return err
	}))
	n, err = listener.Conn().WaitForNotification(ctx)
	require.NoError(t, err)
	require.Equal(t, "second", n.Payload)
}

// pgx options and prepared statement names as the first statement.
func TestProbePgxOptionsFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	conn, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Conn().Prepare(b.ctx, "probe_ins", "INSERT INTO items (id) VALUES ($1) RETURNING id")
	require.NoError(t, err)

	calls := map[string]func(ctx context.Context, tx pgx.Tx, id int) error{
		"QueryResultFormats": func(ctx context.Context, tx pgx.Tx, id int) error {
			var got int32
			err := tx.QueryRow(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", pgx.QueryResultFormats{pgx.TextFormatCode}, id).Scan(&got)
			if err == nil && int(got) != id {
				err = errors.New("wrong id")
			}
			return err
		},
		"QueryRewriter NamedArgs QueryRow": func(ctx context.Context, tx pgx.Tx, id int) error {
			var got int
			return tx.QueryRow(ctx, "INSERT INTO items (id) VALUES (@id) RETURNING id", pgx.NamedArgs{"id": id}).Scan(&got)
		},
		"prepared name Exec": func(ctx context.Context, tx pgx.Tx, id int) error {
			_, err := tx.Exec(ctx, "probe_ins", id)
			return err
		},
		"prepared name QueryRow": func(ctx context.Context, tx pgx.Tx, id int) error {
			var got int
			err := tx.QueryRow(ctx, "probe_ins", id).Scan(&got)
			if err == nil && got != id {
				err = errors.New("wrong id")
			}
			return err
		},
		"CollectRows": func(ctx context.Context, tx pgx.Tx, id int) error {
			rows, _ := tx.Query(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", id)
			got, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
			if err == nil && got != id {
				err = errors.New("wrong id")
			}
			return err
		},
		"ForEachRow": func(ctx context.Context, tx pgx.Tx, id int) error {
			rows, _ := tx.Query(ctx, "INSERT INTO items (id) VALUES ($1) RETURNING id", id)
			var got int
			_, err := pgx.ForEachRow(rows, []any{&got}, func() error { return nil })
			if err == nil && got != id {
				err = errors.New("wrong id")
			}
			return err
		},
	}
	errFail := errors.New("fail")
	for name, call := range calls {
		err := txn.WithTx(b.ctx, conn, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			if err := call(ctx, tx, 5); err != nil {
				return err
			}
			return errFail
		})
		require.ErrorIs(t, err, errFail, name)
		require.Equal(t, byte('I'), conn.Conn().PgConn().TxStatus(), name)
		var n int
		require.NoError(t, conn.QueryRow(b.ctx, "SELECT count(*) FROM items").Scan(&n))
		require.Zero(t, n, "%s: ran outside the transaction", name)
		require.NoError(t, txn.WithTx(b.ctx, conn, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			return call(ctx, tx, 5)
		}), name)
		require.NoError(t, conn.QueryRow(b.ctx, "SELECT count(*) FROM items").Scan(&n))
		require.Equal(t, 1, n, name)
		_, err = conn.Exec(b.ctx, "DELETE FROM items")
		require.NoError(t, err)
	}
}

// DDL as an Exec without arguments or semicolon, and a very long
// statement: both carry BEGIN and roll back with the transaction.
func TestProbeDDLAndLongSQLFirst(t *testing.T) {
	t.Parallel()
	eachMode(t, modesButDescribeExec, func(t *testing.T, mode pgx.QueryExecMode) {
		b := setup(t, func(cfg *pgxpool.Config) {
			cfg.MaxConns = 1
			cfg.ConnConfig.DefaultQueryExecMode = mode
		})
		errFail := errors.New("fail")
		ddls := []string{
			"CREATE TABLE probe_t (id int)",
			"CREATE FUNCTION probe_f(int) RETURNS int LANGUAGE sql AS $$ SELECT $1 + 1 $$",
			"CREATE INDEX probe_i ON items (n)",
			"ALTER TABLE items ADD COLUMN probe_c int",
			"INSERT INTO items (id) SELECT g FROM generate_series(1, 10) g WHERE g > 0 " + strings.Repeat("AND g > 0 ", 100000),
		}
		for i, ddl := range ddls {
			short := ddl[:min(len(ddl), 40)]
			err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, ddl); err != nil {
					return err
				}
				return errFail
			})
			require.ErrorIs(t, err, errFail, short)
			var n int
			require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relname IN ('probe_t', 'probe_i'))
				+ (SELECT count(*) FROM pg_proc WHERE proname = 'probe_f')
				+ (SELECT count(*) FROM pg_attribute WHERE attname = 'probe_c')
				+ (SELECT count(*) FROM items)`).Scan(&n))
			require.Equal(t, i, n, "%s: outlived its rolled-back transaction", short)
			require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, ddl)
				return err
			}), short)
		}
		var n int
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT probe_f(1) + count(*) FROM items").Scan(&n))
		require.Equal(t, 12, n)
		probeIdle(t, b)
	})
}

// The attempt's statement_timeout and lock_timeout bound the first
// statement, in every query mode: a sleep, and a row lock another session
// holds.
func TestProbeTimeoutsAtFirstStatement(t *testing.T) {
	t.Parallel()
	eachMode(t, modesButDescribeExec, func(t *testing.T, mode pgx.QueryExecMode) {
		probeTimeoutsAtFirstStatement(t, mode)
	})
}

func probeTimeoutsAtFirstStatement(t *testing.T, mode pgx.QueryExecMode) {
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 3
		cfg.ConnConfig.DefaultQueryExecMode = mode
	})
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id) VALUES (1)")
	require.NoError(t, err)
	// The caller's ctx is a guard only: the server's timeout must fire
	// long before it.
	guard := func() (context.Context, context.CancelFunc) { return context.WithTimeout(b.ctx, 5*time.Second) }
	for _, sql := range []string{"SELECT pg_sleep($1)", "SELECT pg_sleep(10)"} {
		ctx, cancel := guard()
		err := txn.WithTx(ctx, b.pool, txn.Options{Retry: retry.Never(), StatementTimeout: 100 * time.Millisecond}, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			if strings.Contains(sql, "$1") {
				_, err = tx.Exec(ctx, sql, 10)
			} else {
				_, err = tx.Exec(ctx, sql)
			}
			return err
		})
		cancel()
		require.Equal(t, pgerrcode.QueryCanceled, retry.SQLState(err), "%s: %v", sql, err)
	}
	for _, stmt := range []string{"UPDATE items SET n = n + $1 WHERE id = 1", "SELECT n FROM items WHERE id = $1 FOR UPDATE"} {
		ltx, err := b.pool.Begin(b.ctx)
		require.NoError(t, err)
		_, err = ltx.Exec(b.ctx, "SELECT * FROM items WHERE id = 1 FOR UPDATE")
		require.NoError(t, err)
		ctx, cancel := guard()
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

// pgx's statement cache emptied behind its back (DEALLOCATE ALL): the
// batch's cached BEGIN is gone, and the transaction still begins.
func TestProbeDeallocateAllBetweenTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	opts := txn.Options{Retry: retry.Never(), StatementTimeout: time.Second}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, insert(1)))
	_, err := b.pool.Exec(b.ctx, "DEALLOCATE ALL")
	require.NoError(t, err)
	err = txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (2)")
		return err
	})
	t.Logf("after DEALLOCATE ALL: %v", err)
	probeIdle(t, b)
}

// Goroutines of fn share the tx, taking turns under fn's own lock (pgx's
// connection is not safe for concurrent use, with or without the lazy
// BEGIN): whichever sends first carries BEGIN, and all of it commits or
// rolls back together. Also AfterCommit and nested WithTx from them.
func TestProbeGoroutinesInFn(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	errFail := errors.New("fail")
	for _, want := range []error{errFail, nil} {
		var after sync.WaitGroup
		after.Add(4)
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range 4 {
				wg.Go(func() {
					txn.AfterCommit(ctx, func(context.Context) { after.Done() })
					mu.Lock()
					defer mu.Unlock()
					if i%2 == 0 {
						errs[i] = insert(i+1)(ctx, tx)
						return
					}
					errs[i] = txn.WithTx(ctx, b.pool, txn.Options{}, insert(i+1))
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			return want
		})
		require.ErrorIs(t, err, want)
		if want == nil {
			after.Wait()
			require.Equal(t, 4, b.count(t))
		} else {
			require.Zero(t, b.count(t))
		}
		probeIdle(t, b)
	}
}

// WithTx on connections the caller owns: a *pgx.Conn and a *pgxpool.Conn,
// empty and not, and a caller's connection already in a transaction.
func TestProbeCallersConnections(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 2 })
	conn := pgtest.Connect(t, b.pool.Config().ConnConfig.ConnString())
	pc, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer pc.Release()
	for name, db := range map[string]txn.Beginner{"*pgx.Conn": conn, "*pgxpool.Conn": pc} {
		c := conn
		if p, ok := db.(*pgxpool.Conn); ok {
			c = p.Conn()
		}
		ran := false
		require.NoError(t, txn.WithTx(b.ctx, db, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { ran = true })
			return nil
		}), name)
		require.True(t, ran, name)
		require.Equal(t, byte('I'), c.PgConn().TxStatus(), name)
		require.NoError(t, txn.WithTx(b.ctx, db, txn.Options{}, insert(1)), name)
		require.Equal(t, byte('I'), c.PgConn().TxStatus(), name)
		require.Equal(t, 1, b.count(t), name)
		probeDelete(t, b)

		// Already inside the caller's transaction: fn's work is the
		// caller's to commit or roll back.
		_, err := c.Exec(b.ctx, "BEGIN")
		require.NoError(t, err)
		err = txn.WithTx(b.ctx, db, txn.Options{}, insert(2))
		t.Logf("%s in the caller's transaction: %v, status %c", name, err, c.PgConn().TxStatus())
		_, err = c.Exec(b.ctx, "ROLLBACK")
		require.NoError(t, err)
		require.Equal(t, byte('I'), c.PgConn().TxStatus(), name)
		probeDelete(t, b)
	}
}

// A first statement the server refuses: a syntax error in the simple
// protocol, a statement whose prepare fails, an unknown table. Each gets
// its error, nothing runs after it, and the connection is left idle.
func TestProbeRefusedFirstStatement(t *testing.T) {
	t.Parallel()
	eachMode(t, modesButDescribeExec, func(t *testing.T, mode pgx.QueryExecMode) {
		b := setup(t, func(cfg *pgxpool.Config) {
			cfg.MaxConns = 1
			cfg.ConnConfig.DefaultQueryExecMode = mode
		})
		for _, c := range []struct{ sql, state string }{
			{"SELEC 1", pgerrcode.SyntaxError},
			{"SELECT * FROM no_such_table", pgerrcode.UndefinedTable},
			{"SELECT 1 FROM items WHERE id = 'x'", pgerrcode.InvalidTextRepresentation},
			{"INSERT INTO items (id) VALUES (1), (1)", pgerrcode.UniqueViolation},
			{"SELECT $1", ""}, // no argument for $1
		} {
			for _, how := range []string{"Exec", "QueryRow", "Query"} {
				var later error
				err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
					var err error
					switch how {
					case "Exec":
						_, err = tx.Exec(ctx, c.sql)
					case "QueryRow":
						err = tx.QueryRow(ctx, c.sql).Scan(new(any))
					case "Query":
						var rows pgx.Rows
						rows, err = tx.Query(ctx, c.sql)
						if err == nil {
							for rows.Next() {
							}
							err = rows.Err()
						}
					}
					_, later = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 9)
					if err == nil {
						return errors.New("no error")
					}
					return err
				})
				require.Error(t, err, "%s %s", how, c.sql)
				if c.state != "" {
					require.Equal(t, c.state, retry.SQLState(err), "%s %s: %v", how, c.sql, err)
				}
				if c.state != "" { // a statement pgx refuses sends nothing: the transaction goes on
					require.Error(t, later, "%s %s: the next statement ran", how, c.sql)
				}
				require.Zero(t, b.count(t), "%s %s", how, c.sql)
				probeIdle(t, b)
			}
		}
	})
}

// A retryable error at the first statement runs the transaction again
// from BEGIN, whichever way fn read it.
func TestProbeRetryAtFirstStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	_, err := b.pool.Exec(b.ctx, `CREATE FUNCTION probe_raise(code text) RETURNS int LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = code; END $$`)
	require.NoError(t, err)
	for _, how := range []string{"Exec", "Exec args", "QueryRow", "Query"} {
		runs := 0
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
			runs++
			code := pgerrcode.SerializationFailure
			if runs > 1 {
				code = "00000"
			}
			fail := "SELECT CASE WHEN $1::text = '00000' THEN 1 ELSE probe_raise($1) END"
			var err error
			switch how {
			case "Exec":
				if runs == 1 {
					_, err = tx.Exec(ctx, raise(code))
				}
			case "Exec args":
				_, err = tx.Exec(ctx, fail, code)
			case "QueryRow":
				err = tx.QueryRow(ctx, fail, code).Scan(new(int))
			case "Query":
				rows, _ := tx.Query(ctx, fail, code)
				rows.Close()
			}
			_ = err // swallowed: the server's word decides
			_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1) ON CONFLICT DO NOTHING", 1)
			return err
		})
		require.NoError(t, err, how)
		require.Equal(t, 2, runs, how)
		require.Equal(t, 1, b.count(t), how)
		probeDelete(t, b)
	}
	probeIdle(t, b)
}

// COPY TO STDOUT sent as an Exec leaves the connection usable. (COPY FROM
// STDIN through Exec waits for data Exec never sends, with pgx alone as
// inside WithTx, until ctx ends.)
func TestProbeCopyAsExecFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	for _, sql := range []string{"COPY items TO STDOUT"} {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := txn.WithTx(ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		cancel()
		t.Logf("%s: %v", sql, err)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "%s hung", sql)
		probeIdle(t, b)
	}
}

// Nested WithTx and RequiresNew as fn's first act.
func TestProbeNestedFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 2 })
	errFail := errors.New("fail")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		require.ErrorIs(t, txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if err := insert(1)(ctx, tx); err != nil {
				return err
			}
			return errFail
		}), errFail)
		if err := txn.WithTx(ctx, b.pool, txn.Options{RequiresNew: true}, insert(2)); err != nil {
			return err
		}
		return txn.WithTx(ctx, b.pool, txn.Options{}, insert(3))
	})
	require.NoError(t, err)
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM items ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, ids)
	probeIdle(t, b)
}

// PREPARE and EXECUTE as fn's first statements, an Exec without
// arguments: the statement is the transaction's.
func TestProbePrepareStatementFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "PREPARE probe_p(int) AS INSERT INTO items (id) VALUES ($1)"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "EXECUTE probe_p(1)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DEALLOCATE probe_p")
		return err
	}))
	require.Equal(t, 1, b.count(t))
	probeIdle(t, b)
}

// panicValuer panics when pgx encodes it, as a careless driver.Valuer
// may (a nil pointer inside).
type panicValuer struct{}

func (panicValuer) Value() (driver.Value, error) { panic("valuer") }

// A panic while pgx encodes the first statement's argument goes on, and
// the pool gets its connection back idle, or drops it.
func TestProbePanicEncodingFirstArgumentPool(t *testing.T) {
	t.Parallel()
	b := setup(t, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	require.PanicsWithValue(t, "valuer", func() {
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1::int)", panicValuer{})
			return err
		})
	})
	require.Zero(t, b.count(t))
	probeIdle(t, b)
}
