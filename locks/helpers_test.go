package locks_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
)

// bundle is what a test works with: a pool on a database of its own, with
// the schema the test asked for.
type bundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

// itemsSchema is the table most tests lock rows of.
const itemsSchema = `CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0);
	INSERT INTO items (id) SELECT generate_series(1, 10)`

func setup(t *testing.T, schema string, configure ...func(*pgxpool.Config)) *bundle {
	t.Helper()
	s := pgtest.Setup(t, pgtest.Configure(configure...), pgtest.Schema(schema))
	return &bundle{ctx: s.Ctx, pool: s.Pool}
}

// hold begins a transaction on its own connection, runs sql in it (a
// locking read, an UPDATE) and returns it, still open: its locks stay held
// until the caller or the test's cleanup rolls it back.
func (b *bundle) hold(t *testing.T, sql string, args ...any) pgx.Tx {
	t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(b.ctx)) })
	_, err = tx.Exec(b.ctx, sql, args...)
	require.NoError(t, err)
	return tx
}

// begin starts a transaction the test ends itself (or cleanup rolls back).
func (b *bundle) begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(b.ctx)) })
	return tx
}

// waitUntilBlocked returns once the backend with pid waits for a lock.
func (b *bundle) waitUntilBlocked(t *testing.T, pid uint32) {
	t.Helper()
	pgtest.WaitUntilBlocked(b.ctx, t, b.pool, pid)
}

// pid returns the backend pid of tx's connection.
func pid(tx pgx.Tx) uint32 { return tx.Conn().PgConn().PID() }
