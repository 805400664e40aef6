package optimistic_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

var items = optimistic.Table{Name: pgx.Identifier{"items"}, Key: "id"}

func TestUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)

	v, err := items.Update(b.ctx, b.pool, int64(1), 1, map[string]any{"stock": 9, "name": "red apple"})
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	require.Equal(t, item{1, "red apple", 9, 2}, b.item(t, 1))

	// Version 1 was read before that write: a conflict, and nothing written.
	_, err = items.Update(b.ctx, b.pool, int64(1), 1, map[string]any{"stock": 0})
	require.ErrorIs(t, err, optimistic.ErrConflict)
	require.NotErrorIs(t, err, optimistic.ErrNotFound)
	var c *optimistic.ConflictError
	require.ErrorAs(t, err, &c)
	require.Equal(t, optimistic.ConflictError{Table: pgx.Identifier{"items"}, Key: int64(1), Expected: 1, Current: 2}, *c)
	require.Equal(t, `optimistic: "items" 1: version 1 was read, but the row is now at version 2`, err.Error())
	require.Equal(t, item{1, "red apple", 9, 2}, b.item(t, 1))

	_, err = items.Update(b.ctx, b.pool, int64(99), 1, map[string]any{"stock": 0})
	require.ErrorIs(t, err, optimistic.ErrNotFound)
	require.NotErrorIs(t, err, optimistic.ErrConflict)

	// An empty set only moves the version on.
	v, err = items.Update(b.ctx, b.pool, int64(2), 1, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	require.Equal(t, item{2, "pear", 5, 2}, b.item(t, 2))
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	err := items.Delete(b.ctx, b.pool, int64(1), 7)
	var c *optimistic.ConflictError
	require.ErrorAs(t, err, &c)
	require.Equal(t, int64(1), c.Current)

	require.NoError(t, items.Delete(b.ctx, b.pool, int64(1), 1))
	require.ErrorIs(t, items.Delete(b.ctx, b.pool, int64(1), 1), optimistic.ErrNotFound)
	_, err = items.Update(b.ctx, b.pool, int64(1), 1, nil)
	require.ErrorIs(t, err, optimistic.ErrNotFound, "deleted is not stale")
}

// TestConcurrentWriterIsSeenAsItLeftTheRow: the write (an Update or a
// Delete) waits for a transaction that holds the row, which then commits an
// update or a delete. Under READ COMMITTED the statement's snapshot
// predates that commit and still shows version 1, the one expected; the
// answer must reflect the row as the other transaction left it, and still
// take one round trip.
func TestConcurrentWriterIsSeenAsItLeftTheRow(t *testing.T) {
	t.Parallel()
	writes := []struct {
		name  string
		write func(ctx context.Context, db txn.Querier, key, version int64) error
	}{
		{"Update", func(ctx context.Context, db txn.Querier, key, version int64) error {
			_, err := items.Update(ctx, db, key, version, map[string]any{"stock": 5})
			return err
		}},
		{"Delete", func(ctx context.Context, db txn.Querier, key, version int64) error {
			return items.Delete(ctx, db, key, version)
		}},
	}
	for _, w := range writes {
		for _, c := range []struct {
			name, other string
			check       func(t *testing.T, err error)
		}{
			{"update", "UPDATE items SET stock = 0, version = version + 1 WHERE id = 1", func(t *testing.T, err error) {
				var c *optimistic.ConflictError
				require.ErrorAs(t, err, &c)
				require.Equal(t, int64(2), c.Current, "the version the other transaction committed")
			}},
			{"delete", "DELETE FROM items WHERE id = 1", func(t *testing.T, err error) {
				require.ErrorIs(t, err, optimistic.ErrNotFound, "deleted, not stale")
			}},
		} {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, itemsSchema)
				// The write goes through a pool of its own that counts
				// round trips; the test's own statements use b.pool.
				cfg := b.pool.Config()
				cfg.MaxConns = 1
				rt := pgtest.CountRoundTrips(cfg)
				counted, err := pgxpool.NewWithConfig(b.ctx, cfg)
				require.NoError(t, err)
				defer counted.Close()
				conn, err := counted.Acquire(b.ctx)
				require.NoError(t, err)
				defer conn.Release()
				// pgx prepares a statement on its first use: make that
				// first use a plain conflict on the other row.
				require.ErrorIs(t, w.write(b.ctx, conn, 2, 0), optimistic.ErrConflict)

				other, err := b.pool.Begin(b.ctx)
				require.NoError(t, err)
				defer func() { _ = other.Rollback(context.WithoutCancel(b.ctx)) }()
				_, err = other.Exec(b.ctx, c.other)
				require.NoError(t, err)

				rt.Reset()
				done := make(chan error, 1)
				go func() { done <- w.write(b.ctx, conn, 1, 1) }()
				b.waitUntilBlocked(t, conn.Conn().PgConn().PID())
				require.NoError(t, other.Commit(b.ctx))
				c.check(t, <-done)
				require.Equal(t, int64(1), rt.Load(), "one round trip")
			})
		}
	}
}

func TestUpdateJoinsTheTransactionInContext(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		if _, err := items.Update(ctx, b.pool, int64(1), 1, map[string]any{"stock": 0}); err != nil {
			return err
		}
		if err := items.Delete(ctx, nil, int64(2), 1); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Equal(t, item{1, "apple", 10, 1}, b.item(t, 1), "rolled back with the transaction")
	require.Equal(t, item{2, "pear", 5, 1}, b.item(t, 2))
}

func TestHostileNamesAreQuoted(t *testing.T) {
	t.Parallel()
	const table, key, version, col = `it"ems; DROP TABLE victims; --`, `i"d`, `v"er`, `st"ock = 0; --`
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	b := setup(t, `CREATE TABLE victims (id int);
		CREATE TABLE `+q(table)+` (`+q(key)+` int PRIMARY KEY, `+q(col)+` text NOT NULL, `+q(version)+` int NOT NULL);
		INSERT INTO `+q(table)+` VALUES (1, 'x', 1)`)
	tbl := optimistic.Table{Name: pgx.Identifier{"public", table}, Key: key, Version: version}

	v, err := tbl.Update(b.ctx, b.pool, 1, 1, map[string]any{col: "'; DROP TABLE victims; --"})
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	_, err = tbl.Update(b.ctx, b.pool, 1, 1, nil)
	require.ErrorIs(t, err, optimistic.ErrConflict)

	var got string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT "+q(col)+" FROM "+q(table)).Scan(&got))
	require.Equal(t, "'; DROP TABLE victims; --", got)
	var victims bool
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT to_regclass('victims') IS NOT NULL").Scan(&victims))
	require.True(t, victims)
}

func TestTableRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := map[string]struct {
		t   optimistic.Table
		set map[string]any
	}{
		"no name":         {optimistic.Table{Key: "id"}, nil},
		"four parts":      {optimistic.Table{Name: pgx.Identifier{"a", "b", "c", "d"}, Key: "id"}, nil},
		"no key":          {optimistic.Table{Name: pgx.Identifier{"items"}}, nil},
		"NUL":             {optimistic.Table{Name: pgx.Identifier{"ite\x00ms"}, Key: "id"}, nil},
		"long":            {optimistic.Table{Name: pgx.Identifier{"items"}, Key: strings.Repeat("k", 64)}, nil},
		"key is version":  {optimistic.Table{Name: pgx.Identifier{"items"}, Key: "version"}, nil},
		"set the version": {items, map[string]any{"version": 9}},
		"set the key":     {items, map[string]any{"id": 9}},
		"empty column":    {items, map[string]any{"": 9}},
	}
	for name, c := range cases {
		_, err := c.t.Update(ctx, nil, 1, 1, c.set)
		require.ErrorIs(t, err, optimistic.ErrInvalid, name)
	}
	_, err := items.Update(ctx, nil, 1, 1, nil)
	require.ErrorIs(t, err, optimistic.ErrInvalid, "no db and no transaction")
	require.ErrorIs(t, items.Delete(ctx, nil, 1, 1), optimistic.ErrInvalid)
}

// TestUpdateAboveReadCommittedIsASerializationFailure: under REPEATABLE
// READ and SERIALIZABLE a row another transaction changed since the
// snapshot is not reported as a conflict but as SQLSTATE 40001, for WithTx
// to retry from BEGIN with a fresh snapshot, where the write then succeeds.
func TestUpdateAboveReadCommittedIsASerializationFailure(t *testing.T) {
	t.Parallel()
	for _, level := range []isolation.Level{isolation.RepeatableRead, isolation.Serializable} {
		t.Run(level.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, itemsSchema)
			attempts := 0
			fn := func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				var v int64
				if err := tx.QueryRow(ctx, "SELECT version FROM items WHERE id = 1").Scan(&v); err != nil {
					return err
				}
				if attempts == 1 {
					// Committed after this transaction's snapshot was taken.
					if _, err := b.pool.Exec(ctx, "UPDATE items SET stock = stock - 1, version = version + 1 WHERE id = 1"); err != nil {
						return err
					}
				}
				_, err := items.Update(ctx, nil, int64(1), v, map[string]any{"stock": 0})
				return err
			}

			opts := txn.Options{Isolation: level, Retry: retry.Never()}
			err := txn.WithTx(b.ctx, b.pool, opts, fn)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, pgerrcode.SerializationFailure, pgErr.Code)
			require.NotErrorIs(t, err, optimistic.ErrConflict)
			require.Equal(t, 1, attempts)
			require.Equal(t, item{1, "apple", 9, 2}, b.item(t, 1), "only the other transaction's change")

			attempts = 0
			opts.Retry = &retry.Policy{MaxAttempts: 3, InitialInterval: time.Millisecond}
			require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, fn))
			require.Equal(t, 2, attempts, "retried from BEGIN, with a fresh snapshot")
			require.Equal(t, item{1, "apple", 0, 4}, b.item(t, 1))
		})
	}
}
