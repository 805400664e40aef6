package locks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/txn"
)

type waitKey struct{}

// rowLockLog records row-lock events as strings, and checks that each end
// gets the ctx its start returned.
type rowLockLog struct {
	mu     sync.Mutex
	n      int
	events []string
	ends   []locks.RowLockEndData
}

func (l *rowLockLog) RowLockStart(ctx context.Context, d locks.RowLockStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.events = append(l.events, fmt.Sprintf("start %s %s timeout=%v", d.Strength, d.Wait, d.LockTimeout > 0))
	return context.WithValue(ctx, waitKey{}, l.n)
}

func (l *rowLockLog) RowLockEnd(ctx context.Context, d locks.RowLockEndData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("end %s %s %s rows=%d ctx=%v", d.Strength, d.Wait, d.Outcome, d.Rows, ctx.Value(waitKey{})))
	l.ends = append(l.ends, d)
}

// txnObserver is a txn observer that also observes row locks: set on the
// transaction, it receives the row-lock events of its locking reads.
type txnObserver struct {
	rowLockLog
}

func (*txnObserver) TxEnd(context.Context, txn.TxEndData) {}

// Each outcome of a locking read is reported once, to the Observer of the
// transaction in ctx: acquired, not available (NOWAIT, and a bounded wait
// that ran out), skipped (SKIP LOCKED past the only row), and failed.
func TestRowLockEventsThroughTheTransactionsObserver(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	b.hold(t, "SELECT 1 FROM items WHERE id = 1 FOR UPDATE")
	obs := &txnObserver{}
	var v int
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
		require.NoError(t, locks.QueryRow(ctx, tx, locks.Options{}, selectItem, 2).Scan(&v))
		keys, err := locks.ByKey(ctx, b.pool, items, "id", []int64{5, 4, 3}, locks.Options{Strength: locks.ForShare})
		require.NoError(t, err)
		require.Len(t, keys, 3)
		rows, err := locks.Query(ctx, tx, locks.Options{Wait: locks.SkipLocked}, "SELECT v FROM items WHERE id = 1")
		require.NoError(t, err)
		require.False(t, rows.Next())
		rows.Close()
		for _, o := range []locks.Options{{Wait: locks.NoWait}, {LockTimeout: 20 * time.Millisecond}} {
			err := txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				return locks.QueryRow(ctx, tx, o, selectItem, 1).Scan(&v)
			})
			require.ErrorIs(t, err, locks.ErrLockNotAvailable)
		}
		err = txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			return locks.QueryRow(ctx, tx, locks.Options{}, "SELECT v / 0 FROM items WHERE id = $1", 2).Scan(&v)
		})
		require.Error(t, err)
		return nil
	})
	require.NoError(t, err)
	// b.ctx has a deadline, which bounds every wait of the WAIT policy
	// (timeout=true); NOWAIT and SKIP LOCKED are not bounded.
	require.Equal(t, []string{
		"start FOR UPDATE WAIT timeout=true", "end FOR UPDATE WAIT acquired rows=1 ctx=1",
		"start FOR SHARE WAIT timeout=true", "end FOR SHARE WAIT acquired rows=3 ctx=2",
		"start FOR UPDATE SKIP LOCKED timeout=false", "end FOR UPDATE SKIP LOCKED skipped rows=0 ctx=3",
		"start FOR UPDATE NOWAIT timeout=false", "end FOR UPDATE NOWAIT not_available rows=0 ctx=4",
		"start FOR UPDATE WAIT timeout=true", "end FOR UPDATE WAIT not_available rows=0 ctx=5",
		"start FOR UPDATE WAIT timeout=true", "end FOR UPDATE WAIT failed rows=0 ctx=6",
	}, obs.events)
	for i, d := range obs.ends {
		switch d.Outcome {
		case locks.RowLockNotAvailable:
			require.ErrorIs(t, d.Err, locks.ErrLockNotAvailable, "event %d", i)
		case locks.RowLockFailed:
			require.Error(t, d.Err, "event %d", i)
		default:
			require.NoError(t, d.Err, "event %d", i)
		}
		require.Positive(t, d.Duration, "event %d", i)
	}
}

// Options.Observer takes the call's events, in or out of txn.WithTx; a
// transaction without an Observer, or a pgx.Tx of the caller's own,
// reports nothing otherwise.
func TestRowLockEventsToOptionsObserver(t *testing.T) {
	t.Parallel()
	b := setup(t, itemsSchema)
	obs := &rowLockLog{}
	tx := b.begin(t)
	var v int
	require.NoError(t, locks.QueryRow(b.ctx, tx, locks.Options{}, selectItem, 1).Scan(&v))
	require.NoError(t, locks.QueryRow(b.ctx, tx, locks.Options{Strength: locks.ForKeyShare, Observer: obs}, selectItem, 2).Scan(&v))
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		if err := locks.QueryRow(ctx, tx, locks.Options{}, selectItem, 3).Scan(&v); err != nil {
			return err
		}
		return locks.QueryRow(ctx, tx, locks.Options{Strength: locks.ForNoKeyUpdate, Observer: obs}, selectItem, 4).Scan(&v)
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		"start FOR KEY SHARE WAIT timeout=true", "end FOR KEY SHARE WAIT acquired rows=1 ctx=1",
		"start FOR NO KEY UPDATE WAIT timeout=true", "end FOR NO KEY UPDATE WAIT acquired rows=1 ctx=2",
	}, obs.events)
}

// Queue.Claim reports its claim as a FOR NO KEY UPDATE SKIP LOCKED read to
// its Tx.Observer, or the enclosing transaction's: the rows claimed, then
// an empty queue as skipped.
func TestClaimReportsRowLockEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, jobsSchema(3))
	obs := &txnObserver{}
	q := jobs
	q.Tx = txn.Options{Observer: obs}
	for range 2 {
		_, err := q.Claim(b.ctx, b.pool, 5, func(context.Context, pgx.Tx, []job) error { return nil })
		require.NoError(t, err)
	}
	// Without a Tx.Observer, a claim inside a transaction reports to its
	// Observer.
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs}, func(ctx context.Context, _ pgx.Tx) error {
		_, err := jobs.Claim(ctx, b.pool, 5, func(context.Context, pgx.Tx, []job) error { return nil })
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		"start FOR NO KEY UPDATE SKIP LOCKED timeout=false", "end FOR NO KEY UPDATE SKIP LOCKED acquired rows=3 ctx=1",
		"start FOR NO KEY UPDATE SKIP LOCKED timeout=false", "end FOR NO KEY UPDATE SKIP LOCKED skipped rows=0 ctx=2",
		"start FOR NO KEY UPDATE SKIP LOCKED timeout=false", "end FOR NO KEY UPDATE SKIP LOCKED skipped rows=0 ctx=3",
	}, obs.events)
}

// An Options.Observer that implements no row-lock event is refused.
func TestRowLockObserverThatObservesNothingIsRefused(t *testing.T) {
	t.Parallel()
	err := locks.Validate(locks.Options{Observer: struct{}{}})
	require.ErrorIs(t, err, locks.ErrInvalid)
	require.ErrorContains(t, err, "implements none of the event interfaces")
	require.NoError(t, locks.Validate(locks.Options{Observer: &rowLockLog{}}))
}

func TestRowLockOutcomeNames(t *testing.T) {
	t.Parallel()
	for o, want := range map[locks.RowLockOutcome]string{
		locks.RowLockAcquired: "acquired", locks.RowLockNotAvailable: "not_available",
		locks.RowLockSkipped: "skipped", locks.RowLockFailed: "failed", locks.RowLockOutcome(99): "unknown",
	} {
		require.Equal(t, want, o.String())
	}
}
