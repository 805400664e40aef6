package txn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

type attemptKey struct{}

// attemptLog records attempt starts and ends, and which attempt's ctx each
// later event saw.
type attemptLog struct {
	mu     sync.Mutex
	events []string
}

func (a *attemptLog) add(s string) { a.mu.Lock(); a.events = append(a.events, s); a.mu.Unlock() }

func (a *attemptLog) TxAttemptStart(ctx context.Context, d txn.TxAttemptStartData) context.Context {
	a.add(fmt.Sprintf("attempt-start %d", d.Attempt))
	return context.WithValue(ctx, attemptKey{}, d.Attempt)
}

func (a *attemptLog) TxAttemptEnd(ctx context.Context, d txn.TxAttemptEndData) {
	a.add(fmt.Sprintf("attempt-end %d %s ctx=%v", d.Attempt, d.Outcome, ctx.Value(attemptKey{})))
}

func (a *attemptLog) TxRetry(ctx context.Context, d txn.TxRetryData) {
	a.add(fmt.Sprintf("retry %d ctx=%v", d.Attempt, ctx.Value(attemptKey{})))
}

// Each attempt starts with TxAttemptStart and ends with one TxAttemptEnd;
// the attempt's ctx reaches fn and TxAttemptEnd, and TxRetry gets the
// call's.
func TestAttemptStartPairsWithAttemptEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &attemptLog{}
	var seen []any
	calls := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs, Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		calls++
		seen = append(seen, ctx.Value(attemptKey{}))
		if calls <= 2 {
			_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
			return err
		}
		return insert(1)(ctx, tx)
	})
	require.NoError(t, err)
	require.Equal(t, []any{1, 2, 3}, seen)
	require.Equal(t, []string{
		"attempt-start 1", "attempt-end 1 rolled back ctx=1", "retry 1 ctx=<nil>",
		"attempt-start 2", "attempt-end 2 rolled back ctx=2", "retry 2 ctx=<nil>",
		"attempt-start 3", "attempt-end 3 committed ctx=3",
	}, obs.events)
}

// failingBeginner fails every BEGIN.
type failingBeginner struct{}

var errNoBegin = errors.New("no begin here")

func (failingBeginner) BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error) {
	return nil, errNoBegin
}

// An attempt whose BEGIN fails still ends with TxAttemptEnd, so that an
// observer that opened something at TxAttemptStart can close it.
func TestAttemptEndFollowsAFailedBegin(t *testing.T) {
	t.Parallel()
	obs := &attemptLog{}
	err := txn.WithTx(t.Context(), failingBeginner{}, txn.Options{Observer: obs}, func(context.Context, pgx.Tx) error {
		t.Fatal("fn ran without a transaction")
		return nil
	})
	require.ErrorIs(t, err, errNoBegin)
	require.Equal(t, []string{"attempt-start 1", "attempt-end 1 rolled back ctx=1"}, obs.events)
}

// ObserverFrom gives the outermost call's Observer inside WithTx, nested
// calls included, and nil outside a transaction.
func TestObserverFromContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Nil(t, txn.ObserverFrom(b.ctx))
	obs := &attemptLog{}
	var outer, inner txn.Observer
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs}, func(ctx context.Context, _ pgx.Tx) error {
		outer = txn.ObserverFrom(ctx)
		return txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
			inner = txn.ObserverFrom(ctx)
			return nil
		})
	})
	require.NoError(t, err)
	require.Same(t, obs, outer)
	require.Same(t, obs, inner)
	err = txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		require.Nil(t, txn.ObserverFrom(ctx))
		return nil
	})
	require.NoError(t, err)
}
