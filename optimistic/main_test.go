package optimistic_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bundle is what a test works with: a pool on a database of its own, with
// the schema the test asked for.
type bundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

const itemsSchema = `CREATE TABLE items (
		id bigint PRIMARY KEY,
		name text NOT NULL,
		stock int NOT NULL,
		version bigint NOT NULL DEFAULT 1);
	INSERT INTO items (id, name, stock) VALUES (1, 'apple', 10), (2, 'pear', 5)`

func setup(t *testing.T, schema string, configure ...func(*pgxpool.Config)) *bundle {
	t.Helper()
	s := pgtest.Setup(t, pgtest.Configure(configure...), pgtest.Schema(schema))
	return &bundle{ctx: s.Ctx, pool: s.Pool}
}

// item is a row of items.
type item struct {
	ID      int64
	Name    string
	Stock   int
	Version int64
}

func (b *bundle) item(t *testing.T, id int64) item {
	t.Helper()
	var it item
	err := b.pool.QueryRow(b.ctx, "SELECT id, name, stock, version FROM items WHERE id = $1", id).Scan(&it.ID, &it.Name, &it.Stock, &it.Version)
	require.NoError(t, err)
	return it
}

// waitUntilBlocked returns once the backend with pid waits for a lock.
func (b *bundle) waitUntilBlocked(t *testing.T, pid uint32) {
	t.Helper()
	pgtest.WaitUntilBlocked(b.ctx, t, b.pool, pid)
}
