package txn_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

// endsOnly implements one event interface and nothing else.
type endsOnly struct {
	mu   sync.Mutex
	ends []txn.TxEndData
}

func (o *endsOnly) TxEnd(_ context.Context, d txn.TxEndData) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ends = append(o.ends, d)
}

// retriesOnly implements another single event interface.
type retriesOnly struct {
	mu      sync.Mutex
	retries []txn.TxRetryData
}

func (o *retriesOnly) TxRetry(_ context.Context, d txn.TxRetryData) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries = append(o.retries, d)
}

// An observer gets the events whose interface it implements, and WithTx
// runs as without one for the rest: retries, nested calls and all.
func TestObserverImplementingOneEventInterface(t *testing.T) {
	b := setup(t)
	ends := &endsOnly{}
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Name: "ends", Observer: ends, Retry: fastRetry(3)},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if attempts == 1 {
				_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
				return err
			}
			return txn.WithTx(ctx, b.pool, txn.Options{}, insert(1))
		})
	require.NoError(t, err)
	require.Equal(t, 2, attempts)
	require.Len(t, ends.ends, 2, "the nested call's end and the outer call's")
	require.Equal(t, "ends", ends.ends[1].Name)
	require.Equal(t, 2, ends.ends[1].Attempts)
	require.Equal(t, txn.Committed, ends.ends[1].Outcome)

	retries := &retriesOnly{}
	attempts = 0
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Name: "retries", Observer: retries, Retry: fastRetry(3)},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if attempts < 3 {
				_, err := tx.Exec(ctx, raise(pgerrcode.DeadlockDetected))
				return err
			}
			return insert(2)(ctx, tx)
		})
	require.NoError(t, err)
	require.Len(t, retries.retries, 2)
	require.Equal(t, []int{1, 2}, []int{retries.retries[0].Attempt, retries.retries[1].Attempt})
	require.Equal(t, pgerrcode.DeadlockDetected, retries.retries[1].SQLState)
}

// A panic in an AfterCommit callback is handed to a CallbackPanicObserver;
// an observer that is not one does not swallow it: the panic goes on, as
// with no observer at all.
func TestCallbackPanicGoesOnWithoutACallbackPanicObserver(t *testing.T) {
	b := setup(t)
	ends := &endsOnly{}
	require.Panics(t, func() {
		_ = txn.WithTx(b.ctx, b.pool, txn.Options{Observer: ends}, func(ctx context.Context, tx pgx.Tx) error {
			txn.AfterCommit(ctx, func(context.Context) { panic("callback") })
			return insert(1)(ctx, tx)
		})
	})
	require.Equal(t, 1, b.count(t), "the commit stands")
}

// The slog observer implements every event interface, so a new event
// interface must come with a method on it.
func TestSlogObserverImplementsEveryEvent(t *testing.T) {
	t.Parallel()
	obs := txn.NewSlogObserver(nil)
	require.Implements(t, (*txn.TxStartObserver)(nil), obs)
	require.Implements(t, (*txn.TxRetryObserver)(nil), obs)
	require.Implements(t, (*txn.TxAttemptStartObserver)(nil), obs)
	require.Implements(t, (*txn.TxAttemptEndObserver)(nil), obs)
	require.Implements(t, (*txn.TxEndObserver)(nil), obs)
	require.Implements(t, (*txn.CommitResolvedObserver)(nil), obs)
	require.Implements(t, (*txn.TxLeakObserver)(nil), obs)
	require.Implements(t, (*txn.CallbackPanicObserver)(nil), obs)
}

// wrongSignature has a TxEnd method that is not the event's: it observes
// nothing.
type wrongSignature struct{}

func (wrongSignature) TxEnd(txn.TxEndData) {}

// TestObserverThatObservesNothingIsRefused: Observer is any, so a value
// implementing no event interface (a mistyped method, a pointer receiver on
// a value) would compile and never be called. It is refused instead.
func TestObserverThatObservesNothingIsRefused(t *testing.T) {
	t.Parallel()
	called := false
	for _, obs := range []txn.Observer{struct{}{}, wrongSignature{}, "observer"} {
		err := txn.WithTx(t.Context(), nilBeginner{}, txn.Options{Observer: obs}, func(context.Context, pgx.Tx) error {
			called = true
			return nil
		})
		require.ErrorIs(t, err, txn.ErrInvalid)
		require.ErrorContains(t, err, "implements none of the event interfaces")
	}
	require.False(t, called)
}

// nilBeginner fails the test if WithTx gets as far as beginning.
type nilBeginner struct{}

func (nilBeginner) BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error) {
	panic("BeginTx called: options were not validated first")
}
