package optimistic_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/optimistic"
)

// statements counts the statements a pool sends.
type statements struct{ n atomic.Int64 }

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A row whose version is NULL exists: a versioned write on it says so,
// naming the column, instead of reporting the row missing, and still in
// one statement.
func TestNullVersionIsNotNotFound(t *testing.T) {
	t.Parallel()
	count := &statements{}
	b := setup(t, `CREATE TABLE legacy (id bigint PRIMARY KEY, name text NOT NULL, rev bigint);
		INSERT INTO legacy VALUES (1, 'old', NULL), (2, 'new', 0)`,
		func(c *pgxpool.Config) { c.ConnConfig.Tracer = count })
	legacy := optimistic.Table{Name: pgx.Identifier{"legacy"}, Key: "id", Version: "rev"}

	before := count.n.Load()
	_, err := legacy.Update(b.ctx, b.pool, int64(1), 0, map[string]any{"name": "x"})
	require.Equal(t, int64(1), count.n.Load()-before, "one round trip")
	require.ErrorIs(t, err, optimistic.ErrNullVersion)
	require.NotErrorIs(t, err, optimistic.ErrNotFound)
	require.NotErrorIs(t, err, optimistic.ErrConflict)
	require.Contains(t, err.Error(), `"rev"`)
	require.Contains(t, err.Error(), "NOT NULL")

	before = count.n.Load()
	err = legacy.Delete(b.ctx, b.pool, int64(1), 0)
	require.Equal(t, int64(1), count.n.Load()-before, "one round trip")
	require.ErrorIs(t, err, optimistic.ErrNullVersion)
	require.NotErrorIs(t, err, optimistic.ErrNotFound)

	type row struct {
		ID   int64
		Name string
		Rev  *int64
	}
	_, err = optimistic.Modify(b.ctx, b.pool, legacy, int64(1), optimistic.ModifyOptions{}, func(*row) error { return nil })
	require.ErrorIs(t, err, optimistic.ErrNullVersion)
	type typed struct {
		ID   int64
		Name string
		Rev  int64
	}
	_, err = optimistic.Modify(b.ctx, b.pool, legacy, int64(1), optimistic.ModifyOptions{}, func(*typed) error {
		t.Fatal("change must not run on a row that cannot be saved")
		return nil
	})
	require.ErrorIs(t, err, optimistic.ErrNullVersion)

	// Nothing was written, and the other answers are as before.
	var name string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT name FROM legacy WHERE id = 1").Scan(&name))
	require.Equal(t, "old", name)
	_, err = legacy.Update(b.ctx, b.pool, int64(9), 0, nil)
	require.ErrorIs(t, err, optimistic.ErrNotFound)
	require.ErrorIs(t, legacy.Delete(b.ctx, b.pool, int64(9), 0), optimistic.ErrNotFound)
	_, err = legacy.Update(b.ctx, b.pool, int64(2), 5, nil)
	require.ErrorIs(t, err, optimistic.ErrConflict)
	v, err := legacy.Update(b.ctx, b.pool, int64(2), 0, map[string]any{"name": "newer"})
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
}

// A nil *pgxpool.Pool or *pgx.Conn in the Querier is bad input, not a
// panic at the first statement.
func TestTypedNilQuerierIsInvalid(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var pool *pgxpool.Pool
	var conn *pgx.Conn
	type row struct {
		ID      int64
		Version int64
	}
	_, err := items.Update(ctx, pool, int64(1), 1, nil)
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	_, err = items.Update(ctx, conn, int64(1), 1, nil)
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	require.ErrorIs(t, items.Delete(ctx, pool, int64(1), 1), optimistic.ErrInvalid)
	require.ErrorIs(t, items.Delete(ctx, conn, int64(1), 1), optimistic.ErrInvalid)
	_, err = optimistic.Modify(ctx, pool, items, int64(1), optimistic.ModifyOptions{}, func(*row) error { return nil })
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	_, err = optimistic.Modify(ctx, conn, items, int64(1), optimistic.ModifyOptions{}, func(*row) error { return nil })
	require.ErrorIs(t, err, optimistic.ErrInvalid)
}

// A row type without a field for the version column gets ErrInvalid, as
// documented, not pgx's mapping error.
func TestModifyRowTypeWithoutVersionField(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	type noVersion struct {
		ID    int64
		Name  string
		Stock int
	}
	_, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*noVersion) error {
		t.Fatal("change must not run")
		return nil
	})
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	require.Contains(t, err.Error(), `version column "version"`)
}

// The statement's own names do not hide a table called like them.
func TestTableNamedLikeTheStatementsParts(t *testing.T) {
	t.Parallel()
	b := setup(t, `CREATE TABLE updated (id int PRIMARY KEY, version int NOT NULL DEFAULT 0);
		CREATE TABLE deleted (id int PRIMARY KEY, version int NOT NULL DEFAULT 0);
		INSERT INTO updated VALUES (1, 3); INSERT INTO deleted VALUES (1, 3)`)
	for _, name := range []string{"updated", "deleted"} {
		tbl := optimistic.Table{Name: pgx.Identifier{name}, Key: "id"}
		_, err := tbl.Update(b.ctx, b.pool, 1, 2, nil)
		var c *optimistic.ConflictError
		require.ErrorAs(t, err, &c, name)
		require.Equal(t, int64(3), c.Current)
		_, err = tbl.Update(b.ctx, b.pool, 2, 2, nil)
		require.ErrorIs(t, err, optimistic.ErrNotFound, name)
		require.ErrorAs(t, tbl.Delete(b.ctx, b.pool, 1, 2), &c, name)
		require.NoError(t, tbl.Delete(b.ctx, b.pool, 1, 3), name)
	}
}
