package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

const resetMsg = "resetting the pool so new connections reach the primary"

// A failover is played with default_transaction_read_only: connections
// opened while the database has it on are the ones left on the old,
// now read-only server; connections opened after it is reset reach the
// new primary.
func TestReadOnlyServerResetsThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, admin, db := readOnlyDatabase(t)

	p, logs := openOn(t, dsn, pool.Options{MaxConns: 3})
	var old []*pgxpool.Conn
	for range 3 {
		c, err := p.Acquire(ctx)
		require.NoError(t, err)
		old = append(old, c)
	}
	for _, c := range old {
		c.Release()
	}
	_, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" RESET default_transaction_read_only")
	require.NoError(t, err)

	// The first write lands on an old connection and fails; it resets the
	// pool, and the next write gets a new connection.
	_, err = p.Exec(ctx, "INSERT INTO t VALUES (1)")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, pgerrcode.ReadOnlySQLTransaction, pgErr.Code)
	_, err = p.Exec(ctx, "INSERT INTO t VALUES (2)")
	require.NoError(t, err)
	assert.Equal(t, 1, logs.count(resetMsg), logs.String())
}

// A 25006 from a transaction the caller began READ ONLY is the caller's
// mistake, not a failover: the pool is left alone.
func TestReadOnlyTransactionDoesNotResetThePool(t *testing.T) {
	t.Parallel()
	p, logs := open(t, pool.Options{})
	ctx := context.Background()
	_, err := p.Exec(ctx, "CREATE TABLE t (n int)")
	require.NoError(t, err)
	tx, err := p.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO t VALUES (1)")
	require.Error(t, err)
	require.NoError(t, tx.Rollback(ctx))
	assert.Zero(t, logs.count(resetMsg))
	assert.EqualValues(t, 1, p.Stat().TotalConns(), "the connection was kept")
}

// readOnlyDatabase makes a database with a table t whose sessions default
// to read-only, as connections left on a demoted server are, and returns
// its DSN, an admin connection to it and its name.
func readOnlyDatabase(t *testing.T) (dsn string, admin *pgx.Conn, db string) {
	t.Helper()
	ctx := context.Background()
	dsn = pgtest.NewDatabase(t)
	admin = pgtest.Connect(t, dsn)
	require.NoError(t, admin.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	_, err := admin.Exec(ctx, "CREATE TABLE t (n int)")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET default_transaction_read_only = on")
	require.NoError(t, err)
	return dsn, admin, db
}
