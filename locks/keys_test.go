package locks_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

var items = pgx.Identifier{"items"}

func TestByKeyLocksInKeyOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	tx := b.begin(t)

	got, err := locks.ByKey(b.ctx, tx, items, "id", []int64{7, 3, 99, 5, 3}, locks.Options{})
	require.NoError(t, err)
	require.Equal(t, []int64{3, 5, 7}, got, "sorted, once each, the missing key left out")

	other := b.begin(t)
	for _, id := range []int64{3, 5, 7} {
		_, err := locks.ByKey(b.ctx, other, items, "id", []int64{id}, locks.Options{Wait: locks.NoWait})
		require.ErrorIs(t, err, locks.ErrLockNotAvailable, "row %d is held", id)
		require.NoError(t, other.Rollback(b.ctx))
		other = b.begin(t)
	}
	free, err := locks.ByKey(b.ctx, other, items, "id", []int64{1, 2, 3, 4, 5}, locks.Options{Wait: locks.SkipLocked})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 4}, free)

	none, err := locks.ByKey(b.ctx, other, items, "id", []int64{}, locks.Options{})
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestByKeyTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "UPDATE items SET v = 1 WHERE id = 2")
	tx := b.begin(t)
	_, err := locks.ByKey(b.ctx, tx, items, "id", []int64{1, 2}, locks.Options{LockTimeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
}

func TestByKeyRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Refused before anything is sent: no transaction is needed to see it.
	cases := map[string]struct {
		table pgx.Identifier
		key   string
		o     locks.Options
	}{
		"no table":          {nil, "id", locks.Options{}},
		"four parts":        {pgx.Identifier{"a", "b", "c", "d"}, "id", locks.Options{}},
		"empty part":        {pgx.Identifier{"public", ""}, "id", locks.Options{}},
		"NUL":               {pgx.Identifier{"ite\x00ms"}, "id", locks.Options{}},
		"too long":          {pgx.Identifier{strings.Repeat("t", 64)}, "id", locks.Options{}},
		"no key":            {items, "", locks.Options{}},
		"Of":                {items, "id", locks.Options{Of: []string{"items"}}},
		"bad strength":      {items, "id", locks.Options{Strength: 11}},
		"negative timeout":  {items, "id", locks.Options{LockTimeout: -time.Second}},
		"unknown wait mode": {items, "id", locks.Options{Wait: 4}},
	}
	for name, c := range cases {
		_, err := locks.ByKey(ctx, nil, c.table, c.key, []int{1}, c.o)
		require.ErrorIs(t, err, locks.ErrInvalid, name)
	}
}

// TestHostileNamesAreQuoted: names with quotes, semicolons and comment
// markers are names, never SQL.
func TestHostileNamesAreQuoted(t *testing.T) {
	t.Parallel()
	const table = `it"ems; DROP TABLE victims; --`
	const col = `i"d; DELETE FROM victims; --`
	qt, qc := pgx.Identifier{table}.Sanitize(), pgx.Identifier{col}.Sanitize()
	b := setup(t, `CREATE TABLE victims (id int); INSERT INTO victims VALUES (1);
		CREATE TABLE `+qt+` (`+qc+` int PRIMARY KEY);
		INSERT INTO `+qt+` SELECT generate_series(1, 5)`)

	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		got, err := locks.ByKey(ctx, tx, pgx.Identifier{"public", table}, col, []int{4, 2}, locks.Options{})
		require.NoError(t, err)
		require.Equal(t, []int{2, 4}, got)

		rows, err := locks.Query(ctx, b.pool, locks.Options{Of: []string{table}}, "SELECT "+qc+" FROM "+qt+" ORDER BY 1")
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(t, err)
		require.Equal(t, []int{1, 2, 3, 4, 5}, ids)
		return nil
	})
	require.NoError(t, err)

	// A name that is not in FROM is reported by the server as an unknown
	// relation, not run.
	err = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		var id int
		return locks.QueryRow(ctx, tx, locks.Options{Of: []string{"victims; DROP TABLE victims"}}, "SELECT 1 FROM "+qt+" LIMIT 1").Scan(&id)
	})
	require.Equal(t, pgerrcode.UndefinedTable, retry.SQLState(err))

	var victims int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM victims").Scan(&victims))
	require.Equal(t, 1, victims, "no name was run as SQL")
}

// TestByKeyNeverDeadlocks runs many transactions that lock random,
// overlapping sets of rows given in random order, and then update them in
// another random order. Because ByKey takes the rows in key order, none of
// them may fail with a deadlock (40P01), and retry.Never() makes sure no
// deadlock is hidden by a retry. The total of the updates shows every
// transaction committed its work.
func TestByKeyNeverDeadlocks(t *testing.T) {
	t.Parallel()
	const (
		workers = 16
		perWork = 30
		rows    = 10
	)
	b := setup(t, itemsSchema, func(c *pgxpool.Config) { c.MaxConns = workers })
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		expected int
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range perWork {
				keys := rng.Perm(rows)[:2+rng.IntN(4)]
				for i := range keys {
					keys[i]++
				}
				err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
					locked, err := locks.ByKey(ctx, tx, items, "id", keys, locks.Options{})
					if err != nil {
						return err
					}
					if !slices.IsSorted(locked) || len(locked) != len(keys) {
						return errors.New("ByKey returned the wrong keys")
					}
					rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
					for _, k := range keys {
						if _, err := tx.Exec(ctx, "UPDATE items SET v = v + 1 WHERE id = $1", k); err != nil {
							return err
						}
					}
					return nil
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					expected += len(keys)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	deadlocks := 0
	for _, err := range errs {
		if errors.Is(err, locks.ErrDeadlock) || retry.SQLState(err) == pgerrcode.DeadlockDetected {
			deadlocks++
		}
	}
	require.Zero(t, deadlocks, "deadlocks")
	require.Empty(t, errs)
	var total int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT sum(v) FROM items").Scan(&total))
	require.Equal(t, expected, total, "every transaction's updates are in")
}

// TestLockingOutOfOrderDeadlocks is the control for the test above: two
// transactions that take the same two rows in opposite orders deadlock, and
// the victim's error is named ErrDeadlock (and stays retryable).
func TestLockingOutOfOrderDeadlocks(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	begin := func() pgx.Tx {
		conn, err := b.pool.Acquire(b.ctx)
		require.NoError(t, err)
		// A shorter wait before the deadlock check, where the role may set
		// it (superuser); otherwise the server default (1s) applies.
		_, _ = conn.Exec(b.ctx, "SET deadlock_timeout = '100ms'")
		tx, err := conn.Begin(b.ctx)
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = tx.Rollback(context.WithoutCancel(b.ctx))
			conn.Release()
		})
		return tx
	}
	tx1, tx2 := begin(), begin()
	lock := func(tx pgx.Tx, id int64) error {
		_, err := locks.ByKey(b.ctx, tx, items, "id", []int64{id}, locks.Options{})
		return err
	}
	require.NoError(t, lock(tx1, 1))
	require.NoError(t, lock(tx2, 2))

	first := make(chan error, 1)
	go func() { first <- lock(tx1, 2) }()
	b.waitUntilBlocked(t, pid(tx1))
	second := lock(tx2, 1)
	results := []error{<-first, second}

	var victims, winners int
	for _, err := range results {
		switch {
		case err == nil:
			winners++
		case errors.Is(err, locks.ErrDeadlock):
			victims++
			require.True(t, retry.Retryable(err))
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Equal(t, 1, victims)
	require.Equal(t, 1, winners)
}
