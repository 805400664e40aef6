package optimistic_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

var errRollback = errors.New("roll back")

// TestModifyLosesNoUpdate: 32 goroutines increment one counter 100 times
// each through Modify, on the pool, without transactions. Each increment is
// a read, then a write that expects the version read; a write that lost the
// race is retried from a fresh read. Every increment must land exactly once.
func TestModifyLosesNoUpdate(t *testing.T) {
	t.Parallel()
	const (
		workers = 32
		each    = 100
	)
	b := setup(t, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL, version bigint NOT NULL);
		INSERT INTO counters VALUES (1, 0, 0)`, func(c *pgxpool.Config) { c.MaxConns = workers })
	type counter struct {
		ID      int
		N       int
		Version int64
	}
	counters := optimistic.Table{Name: pgx.Identifier{"counters"}, Key: "id"}
	var conflicts, changes atomic.Int64
	opts := optimistic.ModifyOptions{
		// Unbounded attempts (the test's ctx bounds the run), short waits:
		// the point is that retries converge, not how fast.
		Retry:      &retry.Policy{MaxAttempts: -1, InitialInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond},
		OnConflict: func(*optimistic.ConflictError) { conflicts.Add(1) },
	}

	pgtest.Concurrently(t, workers, each, func() error {
		_, err := optimistic.Modify(b.ctx, b.pool, counters, 1, opts, func(c *counter) error {
			changes.Add(1)
			c.N++
			return nil
		})
		return err
	})

	var n int
	var version int64
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT n, version FROM counters WHERE id = 1").Scan(&n, &version))
	require.Equal(t, workers*each, n, "no increment lost, none applied twice")
	require.Equal(t, int64(workers*each), version, "one version per write")
	require.Equal(t, int64(workers*each)+conflicts.Load(), changes.Load(), "every attempt either saved or conflicted")
	t.Logf("%d increments by %d goroutines: %d conflicts retried (%.2f per increment)",
		n, workers, conflicts.Load(), float64(conflicts.Load())/float64(n))
}

func TestModifyReturnsTheSavedRow(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	got, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(it *item) error {
		it.Stock -= 3
		it.ID = 42     // the key is not written
		it.Version = 9 // nor is the version
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, item{42, "apple", 7, 2}, got, "as changed, with the new version")
	require.Equal(t, item{1, "apple", 7, 2}, b.item(t, 1))
}

// TestModifyMapsColumnsLikePgx: fields found by db tag, by name ignoring
// case and underscores, and through an embedded struct are written back to
// the columns pgx read them from.
func TestModifyMapsColumnsLikePgx(t *testing.T) {
	t.Parallel()
	b := setup(t, `CREATE TABLE profiles (
			user_id int PRIMARY KEY, display_name text NOT NULL, "Email" text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now(), tags text[] NOT NULL, rev int NOT NULL);
		INSERT INTO profiles VALUES (1, 'ann', 'ann@example.com', now(), '{a}', 3)`)
	type audit struct {
		CreatedAt time.Time
	}
	type profile struct {
		audit
		UserID      int `db:"user_id"`
		DisplayName string
		Mail        string   `db:"Email"`
		Tags        []string `db:"tags"`
		Rev         int32    `db:"rev"`
		skipped     bool
	}
	profiles := optimistic.Table{Name: pgx.Identifier{"profiles"}, Key: "user_id", Version: "rev"}
	before, err := optimistic.Modify(b.ctx, b.pool, profiles, 1, optimistic.ModifyOptions{}, func(p *profile) error {
		p.DisplayName = "Ann"
		p.Mail = "ann@example.org"
		p.Tags = append(p.Tags, "b")
		p.skipped = true
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int32(4), before.Rev)

	var name, mail string
	var tags []string
	var rev int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT display_name, "Email", tags, rev FROM profiles`).Scan(&name, &mail, &tags, &rev))
	require.Equal(t, "Ann", name)
	require.Equal(t, "ann@example.org", mail)
	require.Equal(t, []string{"a", "b"}, tags)
	require.Equal(t, 4, rev)
}

func TestModifyErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	ctx := b.ctx
	noop := func(*item) error { return nil }

	calls := 0
	errOut := errors.New("out of stock")
	_, err := optimistic.Modify(ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*item) error {
		calls++
		return errOut
	})
	require.Same(t, errOut, err, "change's error comes back as it is")
	require.Equal(t, 1, calls, "and is not retried")

	_, err = optimistic.Modify(ctx, b.pool, items, int64(99), optimistic.ModifyOptions{}, noop)
	require.ErrorIs(t, err, optimistic.ErrNotFound)

	_, err = optimistic.Modify(ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, (func(*item) error)(nil))
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	_, err = optimistic.Modify(ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*int) error { return nil })
	require.ErrorIs(t, err, optimistic.ErrInvalid, "not a struct")
	_, err = optimistic.Modify(ctx, nil, items, int64(1), optimistic.ModifyOptions{}, noop)
	require.ErrorIs(t, err, optimistic.ErrInvalid, "no db")
	type textVersion struct {
		ID      int64
		Name    string
		Stock   int
		Version string
	}
	_, err = optimistic.Modify(ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*textVersion) error { return nil })
	require.ErrorIs(t, err, optimistic.ErrInvalid)
	require.Contains(t, err.Error(), "not an integer")
	type missing struct {
		ID    int64
		Stock int
	}
	_, err = optimistic.Modify(ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*missing) error { return nil })
	require.Error(t, err, "pgx refuses a struct without a field for every column")
}

// TestModifyGivesUpAfterThePolicy: a writer that always gets in first (here,
// from inside change) makes every attempt conflict; the error then says
// both.
func TestModifyGivesUpAfterThePolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	var seen []*optimistic.ConflictError
	opts := optimistic.ModifyOptions{
		Retry:      &retry.Policy{MaxAttempts: 3, InitialInterval: time.Millisecond},
		OnConflict: func(c *optimistic.ConflictError) { seen = append(seen, c) },
	}
	_, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), opts, func(it *item) error {
		_, err := b.pool.Exec(b.ctx, "UPDATE items SET version = version + 1 WHERE id = 1")
		return err
	})
	require.ErrorIs(t, err, optimistic.ErrConflict)
	require.ErrorIs(t, err, retry.ErrExhausted)
	var c *optimistic.ConflictError
	require.ErrorAs(t, err, &c)
	require.Equal(t, optimistic.ConflictError{Table: items.Name, Key: int64(1), Expected: 3, Current: 4}, *c)
	require.Len(t, seen, 3)
	require.Equal(t, int64(1), seen[0].Expected, "each attempt read afresh")
	require.Equal(t, int64(2), seen[1].Expected)
}

func TestModifyJoinsTheTransactionInContext(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		for _, id := range []int64{1, 2} {
			if _, err := optimistic.Modify(ctx, b.pool, items, id, optimistic.ModifyOptions{}, func(it *item) error {
				it.Stock = 0
				return nil
			}); err != nil {
				return err
			}
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Equal(t, item{1, "apple", 10, 1}, b.item(t, 1))
	require.Equal(t, item{2, "pear", 5, 1}, b.item(t, 2))
}

// TestModifyTakesAnyIntegerVersionField: unsigned version fields are read
// and set like signed ones; a field too narrow for the next version is
// refused before anything is written.
func TestModifyTakesAnyIntegerVersionField(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	type u64 struct {
		ID      int64
		Name    string
		Stock   int
		Version uint64
	}
	got64, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(it *u64) error {
		it.Stock = 7
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, u64{1, "apple", 7, 2}, got64)
	require.Equal(t, item{1, "apple", 7, 2}, b.item(t, 1))

	type u32 struct {
		ID      int64
		Name    string
		Stock   int
		Version uint32
	}
	got32, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(it *u32) error {
		it.Stock = 6
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, u32{1, "apple", 6, 3}, got32)
	require.Equal(t, item{1, "apple", 6, 3}, b.item(t, 1))

	// A conflict is seen through an unsigned field too.
	_, err = optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{Retry: retry.Never()}, func(it *u32) error {
		_, err := b.pool.Exec(b.ctx, "UPDATE items SET version = version + 1 WHERE id = 1")
		return err
	})
	require.ErrorIs(t, err, optimistic.ErrConflict)

	_, err = b.pool.Exec(b.ctx, "UPDATE items SET version = 255 WHERE id = 2")
	require.NoError(t, err)
	type u8 struct {
		ID      int64
		Name    string
		Stock   int
		Version uint8
	}
	_, err = optimistic.Modify(b.ctx, b.pool, items, int64(2), optimistic.ModifyOptions{}, func(it *u8) error {
		it.Stock = 0
		return nil
	})
	require.ErrorIs(t, err, optimistic.ErrInvalid, "256 does not fit")
	require.Equal(t, item{2, "pear", 5, 255}, b.item(t, 2), "nothing written")
}

// TestModifyRetriesAConflictFromChange: change's own versioned write lost
// once; the zero ModifyOptions retry it under retry.Default().
func TestModifyRetriesAConflictFromChange(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	calls := 0
	got, err := optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(it *item) error {
		calls++
		if calls == 1 {
			return &optimistic.ConflictError{Table: pgx.Identifier{"children"}, Key: 1, Expected: 1, Current: 2}
		}
		it.Stock = 3
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls)
	require.Equal(t, item{1, "apple", 3, 2}, got)

	// Under retry.Default() a conflict that never clears takes exactly
	// DefaultMaxAttempts attempts.
	calls = 0
	_, err = optimistic.Modify(b.ctx, b.pool, items, int64(1), optimistic.ModifyOptions{}, func(*item) error {
		calls++
		return &optimistic.ConflictError{Table: pgx.Identifier{"children"}, Key: 1, Expected: 1, Current: 2}
	})
	require.ErrorIs(t, err, optimistic.ErrConflict)
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, retry.DefaultMaxAttempts, calls)
	require.Equal(t, item{1, "apple", 3, 2}, b.item(t, 1), "nothing written")
}

// TestModifyReturnsSerializationFailures: inside a REPEATABLE READ
// transaction, a row changed since the snapshot fails Modify's save with
// 40001. Modify does not retry it (a fresh read in the same snapshot would
// see the same old row): it returns it once, as it is, and WithTx retries
// the whole transaction from BEGIN.
func TestModifyReturnsSerializationFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	var attempts, changes, conflicts int
	mopts := optimistic.ModifyOptions{OnConflict: func(*optimistic.ConflictError) { conflicts++ }}
	fn := func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if _, err := tx.Exec(ctx, "SELECT 1 FROM items"); err != nil { // takes the snapshot
			return err
		}
		if attempts == 1 {
			if _, err := b.pool.Exec(ctx, "UPDATE items SET stock = stock - 1, version = version + 1 WHERE id = 1"); err != nil {
				return err
			}
		}
		_, err := optimistic.Modify(ctx, nil, items, int64(1), mopts, func(it *item) error {
			changes++
			it.Stock = 0
			return nil
		})
		return err
	}

	opts := txn.Options{Isolation: isolation.RepeatableRead, Retry: retry.Never()}
	err := txn.WithTx(b.ctx, b.pool, opts, fn)
	require.Equal(t, pgerrcode.SerializationFailure, retry.SQLState(err))
	require.NotErrorIs(t, err, optimistic.ErrConflict)
	require.Equal(t, 1, changes, "change ran once: the failure was not retried inside the transaction")
	require.Zero(t, conflicts)
	require.Equal(t, item{1, "apple", 9, 2}, b.item(t, 1), "only the other transaction's change")

	attempts, changes = 0, 0
	opts.Retry = &retry.Policy{MaxAttempts: 3, InitialInterval: time.Millisecond}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, fn))
	require.Equal(t, 2, attempts, "WithTx retried from BEGIN")
	require.Equal(t, 2, changes)
	require.Equal(t, item{1, "apple", 0, 4}, b.item(t, 1), "the other writer ran again on the first attempt")
}
