package txn_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

const hotSchema = `CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE ledger (id bigint PRIMARY KEY, amount bigint NOT NULL);
INSERT INTO accounts SELECT g, 1000000 FROM generate_series(1, 4) g`

// hotTransfer moves amount from one hot account to another the way naive
// code does: it reads both balances, then updates "from" and "to" in that
// order (keyOrder: in id order), and writes a ledger row keyed by id.
func hotTransfer(id int64, from, to int, amount int64, keyOrder bool) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		bal := map[int]int64{}
		rows, err := tx.Query(ctx, "SELECT id, balance FROM accounts WHERE id = ANY($1)", []int{from, to})
		if err != nil {
			return err
		}
		for rows.Next() {
			var k int
			var v int64
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			bal[k] = v
		}
		if err := rows.Err(); err != nil {
			return err
		}
		bal[from] -= amount
		bal[to] += amount
		order := []int{from, to}
		if keyOrder {
			slices.Sort(order)
		}
		for _, k := range order {
			if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = $2 WHERE id = $1", k, bal[k]); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "INSERT INTO ledger VALUES ($1, $2)", id, amount)
		return err
	}
}

// hotRun is a run of the hot-spot workload: what each call reported.
type hotRun struct {
	mu        sync.Mutex
	committed []int64 // transfer ids WithTx reported committed
	amount    int64   // their total amount
	failed    int
	latencies []time.Duration
	starts    []time.Duration // when each call began, from the start of the run
	elapsed   time.Duration
}

// runHot runs workers goroutines of random transfers among the 4 hot
// accounts at SERIALIZABLE until each has made perWorker calls or d has
// passed (d > 0).
func runHot(ctx context.Context, pool *pgxpool.Pool, opts txn.Options, keyOrder bool, workers, perWorker int, d time.Duration) *hotRun {
	return runHotWith(ctx, func(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
		return txn.WithTx(ctx, pool, opts, fn)
	}, keyOrder, workers, perWorker, d)
}

// runHotWith is runHot with each transfer run by call.
func runHotWith(ctx context.Context, call func(context.Context, func(context.Context, pgx.Tx) error) error, keyOrder bool, workers, perWorker int, d time.Duration) *hotRun {
	r := &hotRun{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; perWorker == 0 || i < perWorker; i++ {
				if d > 0 && time.Since(start) > d {
					return
				}
				from := 1 + rng.IntN(4)
				to := 1 + (from+rng.IntN(3))%4
				id := int64(w)<<32 | int64(i)
				amount := int64(1 + rng.IntN(100))
				t0 := time.Now()
				err := call(ctx, hotTransfer(id, from, to, amount, keyOrder))
				lat := time.Since(t0)
				r.mu.Lock()
				r.latencies = append(r.latencies, lat)
				r.starts = append(r.starts, t0.Sub(start))
				if err == nil {
					r.committed = append(r.committed, id)
					r.amount += amount
				} else {
					r.failed++
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// Under the random-order transfers that deadlock, with the default lock
// bound on retries: money is conserved, and the ledger holds exactly the
// transfers WithTx reported committed.
func TestHotSpotInvariantsWithRetryLockBound(t *testing.T) {
	t.Parallel()
	s := pgtest.Setup(t, pgtest.Configure(func(c *pgxpool.Config) { c.MaxConns = 8 }), pgtest.Schema(hotSchema))
	opts := txn.Options{Isolation: isolation.Serializable, Retry: &retry.Policy{MaxAttempts: 1000, InitialInterval: time.Millisecond, MaxInterval: 20 * time.Millisecond}}
	r := runHot(s.Ctx, s.Pool, opts, false, 8, 25, 0)
	require.Zero(t, r.failed)
	var total, n int64
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT sum(balance) FROM accounts").Scan(&total))
	require.Equal(t, int64(4*1000000), total, "money is conserved")
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT count(*) FROM ledger WHERE id = ANY($1)", r.committed).Scan(&n))
	require.Equal(t, int64(len(r.committed)), n, "every reported commit is in the ledger")
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT count(*) FROM ledger").Scan(&n))
	require.Equal(t, int64(len(r.committed)), n, "nothing else is")
	require.Zero(t, pgtest.SettledAcquiredConns(s.Pool))
}

// After a conflict at a statement, the next attempt begins with a
// lock_timeout, and a
// lock wait that runs out (55P03) runs the transaction again rather than
// failing it; the first attempt, NoRetryLockTimeout and a LockTimeout of
// the caller's own leave lock_timeout alone.
func TestRetryAfterConflictBoundsLockWaits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, "INSERT INTO items (id) VALUES (1)")
	require.NoError(t, err)

	// A transaction of another connection holds the row until released.
	holder, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	_, err = holder.Exec(b.ctx, "UPDATE items SET n = n WHERE id = 1")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var settings []string
	err = txn.WithTx(ctx, b.pool, txn.Options{Retry: fastRetry(10)}, func(ctx context.Context, tx pgx.Tx) error {
		var s string
		if err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s); err != nil {
			return err
		}
		settings = append(settings, s)
		switch len(settings) {
		case 1: // lose to a conflict
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$`)
			return err
		case 2: // wait on the held row: the bound ends the wait
		default: // let the row go
			if err := holder.Commit(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
				return err
			}
		}
		_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = 1")
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"0", "20ms", "40ms"}, settings)

	for _, c := range []struct {
		opts  txn.Options
		state string
	}{
		{txn.Options{NoRetryLockTimeout: true}, "40P01"},
		{txn.Options{LockTimeout: 5 * time.Second}, "40P01"},
	} {
		settings = nil
		o := c.opts
		o.Retry = fastRetry(3)
		err := txn.WithTx(b.ctx, b.pool, o, func(ctx context.Context, tx pgx.Tx) error {
			var s string
			if err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s); err != nil {
				return err
			}
			settings = append(settings, s)
			if len(settings) == 1 {
				_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '`+c.state+`'; END $$`)
				return err
			}
			return nil
		})
		require.NoError(t, err)
		require.Len(t, settings, 2)
		require.Equal(t, settings[0], settings[1], "%+v", o)
	}
}

// noDeadline is ctx without its deadline, cancelled after a minute by a
// timer instead, so that a test of what WithTx does without a deadline
// still ends if it hangs.
func noDeadline(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := time.AfterFunc(time.Minute, cancel)
	t.Cleanup(func() { stop.Stop(); cancel() })
	_, ok := ctx.Deadline()
	require.False(t, ok)
	return ctx
}

// Without a Retry policy, a call whose ctx has a deadline retries until the
// deadline: a transaction that loses one time more than
// retry.DefaultMaxAttempts allows still commits. Without a deadline, or
// with retry.Default() given as the policy, it gives up after
// DefaultMaxAttempts attempts, as before.
func TestDefaultRetryBudgetIsTheDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	losing := retry.DefaultMaxAttempts // attempts that lose before one can commit
	for _, c := range []struct {
		name     string
		deadline bool
		retry    *retry.Policy
		attempts int
		commits  bool
	}{
		{"deadline", true, nil, losing + 1, true},
		{"no-deadline", false, nil, retry.DefaultMaxAttempts, false},
		{"deadline-explicit-default", true, retry.Default(), retry.DefaultMaxAttempts, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := b.ctx
			if !c.deadline {
				ctx = noDeadline(t, ctx)
			}
			_, ok := ctx.Deadline()
			require.Equal(t, c.deadline, ok)
			attempts := 0
			// Each case is a transaction of its own: they do not take
			// turns with each other.
			err := txn.WithTx(ctx, b.pool, txn.Options{Name: c.name, Retry: c.retry}, func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				if attempts <= losing {
					_, err := tx.Exec(ctx, raise("40001"))
					return err
				}
				return nil
			})
			require.Equal(t, c.attempts, attempts)
			if c.commits {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, retry.ErrExhausted)
				require.Equal(t, "40001", retry.SQLState(err))
			}
		})
	}
}

// Under the deadline budget only conflicts are retried until the
// deadline: a transaction whose every attempt loses its connection (here,
// fn terminates its own backend) stops after retry.DefaultMaxAttempts
// attempts, as without a deadline. A RequiresNew call inside another
// transaction keeps the count for conflicts too: its caller waits,
// holding its locks, while it retries.
func TestDeadlineBudgetIsForConflictsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	runs := 0
	err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
		return err
	})
	require.Error(t, err)
	require.Equal(t, retry.DefaultMaxAttempts, runs)

	inner := 0
	err = txn.WithTx(ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		return txn.WithTx(ctx, b.pool, txn.Options{RequiresNew: true}, func(ctx context.Context, tx pgx.Tx) error {
			inner++
			_, err := tx.Exec(ctx, raise("40001"))
			return err
		})
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, retry.DefaultMaxAttempts, inner)
}
