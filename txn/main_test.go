package txn_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fastRetry retries quickly so tests spend no time in backoff.
func fastRetry(attempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: attempts, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

// bundle is what most tests start from: a pool on a fresh database with a
// small table (see pgtest.Setup).
type bundle struct {
	pool *pgxpool.Pool
	ctx  context.Context
}

func setup(t *testing.T, configure ...func(*pgxpool.Config)) *bundle {
	t.Helper()
	s := pgtest.Setup(t, pgtest.Configure(configure...),
		pgtest.Schema(`CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)`))
	return &bundle{pool: s.Pool, ctx: s.Ctx}
}

func (b *bundle) count(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM items").Scan(&n))
	return n
}

// raise is a statement that fails with the given SQLSTATE.
func raise(code string) string {
	return "DO $$ BEGIN RAISE EXCEPTION 'injected %', '" + code + "' USING ERRCODE = '" + code + "'; END $$"
}

func insert(id int) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", id)
		return err
	}
}
