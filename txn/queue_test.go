package txn_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// waitFor polls cond until it holds or ctx ends; it asserts an order of
// events, not how long they take.
func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return errors.New("condition never held")
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// loseOnce makes fn's first attempt lose to a serialization failure; the
// attempts after it run then.
func loseOnce(then func(ctx context.Context, tx pgx.Tx) error) func(ctx context.Context, tx pgx.Tx) error {
	var runs atomic.Int32
	return func(ctx context.Context, tx pgx.Tx) error {
		if runs.Add(1) == 1 {
			_, err := tx.Exec(ctx, raise("40001"))
			return err
		}
		return then(ctx, tx)
	}
}

// A call that lost a conflict runs its retry alone among the calls of the
// same transaction: another call's attempt waits for its turn, holding no
// transaction, until the retry ends; a call with NoRetryQueue does not wait.
func TestRetryOfAHotTransactionRunsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	opts := txn.Options{Name: "hot", Retry: fastRetry(3)}
	free := opts
	free.NoRetryQueue = true

	var retryRunning, otherRan, freeRan atomic.Bool
	retryDone := make(chan error, 1)
	go func() {
		retryDone <- txn.WithTx(tctx, b.pool, opts, loseOnce(func(ctx context.Context, tx pgx.Tx) error {
			retryRunning.Store(true)
			defer retryRunning.Store(false)
			// Another call of the transaction is now waiting for its turn.
			if err := waitFor(tctx, func() bool { return txn.QueueWaiting(b.pool, "hot") == 1 }); err != nil {
				return err
			}
			// A call that opted out runs meanwhile (on its own: tctx
			// carries no transaction).
			if err := txn.WithTx(tctx, b.pool, free, func(context.Context, pgx.Tx) error {
				freeRan.Store(true)
				return nil
			}); err != nil {
				return err
			}
			return insert(1)(ctx, tx)
		}))
	}()
	require.NoError(t, waitFor(tctx, retryRunning.Load))
	err := txn.WithTx(tctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		if retryRunning.Load() {
			return errors.New("ran alongside the retry")
		}
		otherRan.Store(true)
		return insert(2)(ctx, tx)
	})
	require.NoError(t, err)
	require.NoError(t, <-retryDone)
	require.True(t, otherRan.Load())
	require.True(t, freeRan.Load())
	require.Equal(t, 2, b.count(t))
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// A call waiting for its turn ends with its ctx, without running fn, and
// the transaction's later calls still get their turns.
func TestWaitForTurnEndsWithContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	opts := txn.Options{Name: "hot", Retry: fastRetry(3)}

	waiterCtx, stopWaiter := context.WithCancelCause(tctx)
	errStop := errors.New("caller gave up")
	var retryRunning atomic.Bool
	retryDone := make(chan error, 1)
	go func() {
		retryDone <- txn.WithTx(tctx, b.pool, opts, loseOnce(func(ctx context.Context, tx pgx.Tx) error {
			retryRunning.Store(true)
			if err := waitFor(tctx, func() bool { return txn.QueueWaiting(b.pool, "hot") == 1 }); err != nil {
				return err
			}
			stopWaiter(errStop)
			if err := waitFor(tctx, func() bool { return txn.QueueWaiting(b.pool, "hot") == 0 }); err != nil {
				return err
			}
			return insert(1)(ctx, tx)
		}))
	}()
	require.NoError(t, waitFor(tctx, retryRunning.Load))
	var ran atomic.Bool
	err := txn.WithTx(waiterCtx, b.pool, opts, func(context.Context, pgx.Tx) error {
		ran.Store(true)
		return nil
	})
	require.ErrorIs(t, err, errStop)
	require.False(t, ran.Load(), "fn ran although the call never had its turn")
	require.NoError(t, <-retryDone)
	require.NoError(t, txn.WithTx(tctx, b.pool, opts, insert(2)))
	require.Equal(t, 2, b.count(t))
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// Once a transaction has lost a conflict, the first attempts of its later
// calls begin with their lock waits bounded, as its retries do; another
// transaction (another function, no Name) and NoRetryLockTimeout are left
// alone. Without a Name, closures of one function literal are one
// transaction, also through WithTxValue.
func TestHotTransactionBoundsFirstAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var settings []string
	runs := 0
	hot := func(ctx context.Context, tx pgx.Tx) error { // loses its first run
		runs++
		if runs == 1 {
			_, err := tx.Exec(ctx, raise("40001"))
			return err
		}
		var s string
		err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s)
		settings = append(settings, s)
		return err
	}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, hot))
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, hot))
	_, err := txn.WithTxValue(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) (int, error) {
		return 0, hot(ctx, tx)
	})
	require.NoError(t, err)
	require.Equal(t, []string{"20ms", "20ms", "0"}, settings,
		"the retry, the next call's first attempt, another function")

	setting := func(out *[]string) func(ctx context.Context, tx pgx.Tx) error {
		return func(ctx context.Context, tx pgx.Tx) error {
			var s string
			err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s)
			*out = append(*out, s)
			return err
		}
	}
	var named, off, viaValue []string
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Name: "t", Retry: fastRetry(3)}, loseOnce(func(context.Context, pgx.Tx) error { return nil })))
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Name: "t"}, setting(&named)))
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Name: "t", NoRetryLockTimeout: true}, setting(&off)))
	require.Equal(t, []string{"20ms"}, named)
	require.Equal(t, []string{"0"}, off)

	// WithTxValue keys on the caller's function, not on its own wrapper.
	value := func(ctx context.Context, tx pgx.Tx) (int, error) {
		if len(viaValue) == 0 {
			viaValue = append(viaValue, "lost")
			_, err := tx.Exec(ctx, raise("40001"))
			return 0, err
		}
		return 0, setting(&viaValue)(ctx, tx)
	}
	for range 2 {
		_, err := txn.WithTxValue(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, value)
		require.NoError(t, err)
	}
	require.Equal(t, []string{"lost", "20ms", "20ms"}, viaValue)
	other, err := txn.WithTxValue(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) (string, error) {
		var s string
		err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s)
		return s, err
	})
	require.NoError(t, err)
	require.Equal(t, "0", other, "WithTxValue's own wrapper is not one transaction for all its callers")
}

// With the defaults only (retry.Default(), no options but the level), the
// random-order transfers that deadlock and fail serialization give up on
// no call: money is conserved and the ledger holds exactly the transfers
// WithTx reported committed.
func TestHotSpotWithDefaultsGivesUpOnNoCall(t *testing.T) {
	t.Parallel()
	s := pgtest.Setup(t, pgtest.Schema(hotSchema))
	// Without a deadline, the default policy's budget is its count of
	// attempts (with one, it would be the deadline).
	r := runHot(noDeadline(t, s.Ctx), s.Pool, txn.Options{Isolation: isolation.Serializable}, false, 8, 20, 0)
	require.Zero(t, r.failed)
	require.Len(t, r.committed, 8*20)
	var total, n int64
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT sum(balance) FROM accounts").Scan(&total))
	require.Equal(t, int64(4*1000000), total, "money is conserved")
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT count(*) FROM ledger WHERE id = ANY($1)", r.committed).Scan(&n))
	require.Equal(t, int64(len(r.committed)), n, "every reported commit is in the ledger")
	require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT count(*) FROM ledger").Scan(&n))
	require.Equal(t, int64(len(r.committed)), n, "nothing else is")
	require.Zero(t, pgtest.SettledAcquiredConns(s.Pool))
}

// valueBeginner is a Beginner that is a struct value holding a map: not a
// valid map key itself.
type valueBeginner struct {
	pool *pgxpool.Pool
	tags map[string]string
}

func (v valueBeginner) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	return v.pool.BeginTx(ctx, o)
}

// A transaction on a Beginner that is not a pointer, and not hashable,
// takes turns too: it is known by its type.
func TestHotTransactionOnAValueBeginner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := valueBeginner{pool: b.pool, tags: map[string]string{"a": "b"}}
	opts := txn.Options{Name: "hot", Retry: fastRetry(3)}
	require.NoError(t, txn.WithTx(b.ctx, db, opts, loseOnce(insert(1))))
	require.Equal(t, 0, txn.QueueWaiting(db, "hot"), "the transaction is hot")
	require.NoError(t, txn.WithTx(b.ctx, db, opts, insert(2)))
	require.Equal(t, 2, b.count(t))
}

// A call that holds its transaction's turn gives it up while it asks the
// server what became of a COMMIT whose answer was lost, once: the turn is
// neither kept nor given back twice, and the next call gets its own.
func TestLostCommitAnswerGivesTheTurnUpOnce(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)
	obs := &resolutionObserver{}
	opts := txn.Options{Name: "hot", Retry: fastRetry(3), Observer: obs}
	runs := 0
	err = txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		if runs == 1 {
			_, err := tx.Exec(ctx, raise("40001"))
			return err
		}
		// The retry, run alone, commits, and its answer is lost.
		proxy.ArmCommitFault(faultproxy.CutAfterXID)
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	resolved := obs.take()
	require.Len(t, resolved, 1)
	require.Equal(t, txn.Committed, resolved[0].Outcome)
	require.Equal(t, 0, txn.QueueRunning(pool, "hot"))
	require.NoError(t, txn.WithTx(ctx, pool, opts, insert(2)))
	require.Equal(t, 0, txn.QueueRunning(pool, "hot"))
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Equal(t, 2, n)
}

// A conflict raised by COMMIT makes the transaction hot too: its later
// first attempts take turns (and bound their lock waits), while the retry
// after that COMMIT begins as before (see TestTracerSeesEveryStatement).
func TestConflictAtCommitStartsTurns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	commitFailures(t, b, "40001", 1)
	opts := txn.Options{Name: "c", Retry: fastRetry(3)}
	require.Equal(t, -1, txn.QueueWaiting(b.pool, "c"), "not hot before")
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, insert(1)))
	require.Equal(t, 0, txn.QueueWaiting(b.pool, "c"), "hot after a conflict at COMMIT")
	var s string
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&s)
	}))
	require.Equal(t, "20ms", s)
}

// A RequiresNew call of the same transaction inside an attempt that holds
// the transaction's turn does not wait for a turn its own caller holds:
// the retry that runs alone starts its independent transaction and
// commits both.
func TestRequiresNewInsideItsOwnTurnDoesNotWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	opts := txn.Options{Name: "hot-requires-new", Retry: fastRetry(3)}
	inner := opts
	inner.RequiresNew = true
	err := txn.WithTx(tctx, b.pool, opts, loseOnce(func(ctx context.Context, tx pgx.Tx) error {
		if err := txn.WithTx(ctx, b.pool, inner, insert(1)); err != nil {
			return err
		}
		return insert(2)(ctx, tx)
	}))
	require.NoError(t, err)
	require.Equal(t, 0, txn.QueueRunning(b.pool, "hot-requires-new"))
}
