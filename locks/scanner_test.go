package locks_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// smuggled are queries that once got past the scanner with a second
// statement the server would run.
var smuggled = []string{
	"SELECT id FROM items WHERE id = 1 --\r; DROP TABLE victim",
	"SELECT id FROM items WHERE id = 1 AND 'a' = E'a'\n'\\' -- ' ; DROP TABLE victim; --'",
	"SELECT id FROM items WHERE id = 1 AND 'a' = E'a' -- c\r '\\' -- ' ; DROP TABLE victim; --'",
	"SELECT id FROM items WHERE id = 1$a$ -- $a$; DROP TABLE victim",
}

// TestSimpleProtocolRunsNoSecondStatement: on a pool in simple-protocol
// mode, as PgBouncer users configure, the server runs every statement of a
// query string. Each smuggled query is refused before it is sent, and the
// table it would drop is still there.
func TestSimpleProtocolRunsNoSecondStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema+"; CREATE TABLE victim (id int)", func(c *pgxpool.Config) {
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	})
	for _, q := range smuggled {
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			rows, err := locks.Query(ctx, tx, locks.Options{}, q)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		})
		require.ErrorIs(t, err, locks.ErrInvalid, "%q", q)
		require.Contains(t, err.Error(), "more than one statement", "%q", q)
		var victim bool
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT to_regclass('victim') IS NOT NULL").Scan(&victim))
		require.True(t, victim, "%q dropped the table", q)
	}

	// A trailing comment ended by \r still works in this mode.
	tx := b.begin(t)
	var v int
	require.NoError(t, locks.QueryRow(b.ctx, tx, locks.Options{}, "SELECT v FROM items WHERE id = $1 -- c\r", 1).Scan(&v))
}

// TestCarriageReturnCannotChangeTheWaitPolicy: "--\r SKIP LOCKED" after a
// query is SQL to the server, not a comment. It once turned the caller's
// waiting FOR UPDATE into SKIP LOCKED (no rows, at once). Now the clause
// goes after it, where the server refuses the query.
func TestCarriageReturnCannotChangeTheWaitPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "SELECT * FROM items WHERE id = 1 FOR UPDATE")
	tx := b.begin(t)
	var id int
	err := locks.QueryRow(b.ctx, tx, locks.Options{LockTimeout: 5 * time.Second}, "SELECT id FROM items WHERE id = 1 --\r SKIP LOCKED").Scan(&id)
	require.NotErrorIs(t, err, pgx.ErrNoRows, "the wait became SKIP LOCKED")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.SyntaxError, pgErr.Code)
}

// backslashQuery reads differently with standard_conforming_strings off:
// 'x\' /* ' is then one string, and the clause appended before the comment
// lands inside it, while FOR KEY SHARE SKIP LOCKED comes out of the
// comment.
const backslashQuery = `SELECT id FROM items WHERE id = 1 AND '' <> 'x\' /* ' FOR KEY SHARE SKIP LOCKED -- */`

// TestRefusesWithoutStandardConformingStrings: with
// standard_conforming_strings off, Query refuses, whatever the query, and
// on every kind of transaction it takes.
func TestRefusesWithoutStandardConformingStrings(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema+";"+jobsSchema(3))
	b.hold(t, "SELECT * FROM items WHERE id = 1 FOR UPDATE")
	off := func(t *testing.T, q txn.Querier) {
		t.Helper()
		_, err := q.Exec(b.ctx, "SET LOCAL standard_conforming_strings = off")
		require.NoError(t, err)
	}
	refused := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, locks.ErrInvalid)
		require.Contains(t, err.Error(), "standard_conforming_strings")
	}

	tx := b.begin(t)
	off(t, tx)
	var id int
	for _, q := range []string{backslashQuery, "SELECT id FROM items WHERE id = 2"} {
		refused(t, locks.QueryRow(b.ctx, tx, locks.Options{Wait: locks.NoWait}, q).Scan(&id))
	}
	// Why: run as rewritten, the server reads FOR KEY SHARE SKIP LOCKED,
	// skips the held row and answers at once, where NOWAIT was asked for.
	rewritten, err := locks.Options{Wait: locks.NoWait}.Apply(backslashQuery)
	require.NoError(t, err)
	require.ErrorIs(t, tx.QueryRow(b.ctx, rewritten).Scan(&id), pgx.ErrNoRows)
	require.NoError(t, tx.Rollback(b.ctx))

	conn, err := b.pool.Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(b.ctx, "BEGIN")
	require.NoError(t, err)
	off(t, conn)
	refused(t, locks.QueryRow(b.ctx, conn, locks.Options{}, "SELECT id FROM items WHERE id = 2").Scan(&id))
	_, err = conn.Exec(b.ctx, "ROLLBACK")
	require.NoError(t, err)

	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		off(t, tx)
		_, err := jobs.Claim(ctx, b.pool, 1, func(context.Context, pgx.Tx, []job) error { return nil })
		return err
	})
	refused(t, err)

	// After ROLLBACK the setting is back on, and the same query runs: the
	// row it would lock is held, so NOWAIT fails, as it should.
	tx = b.begin(t)
	err = locks.QueryRow(b.ctx, tx, locks.Options{Wait: locks.NoWait}, backslashQuery).Scan(&id)
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
}
