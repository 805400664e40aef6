package txn_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// A call whose budget is its ctx's deadline (no Options.Retry) and whose
// retry waits for its turn until that deadline ends with an error that
// still reaches the conflict it lost, as the retry loop's own error does
// when ctx ends between attempts: the caller can tell contention from a
// slow statement. Today the wait's ctx error is returned bare.
func TestTurnWaitPastTheDeadlineKeepsTheLastConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	opts := txn.Options{Name: "deadline-turn"}

	// The transaction is hot: a conflict has been lost.
	require.NoError(t, txn.WithTx(tctx, b.pool, opts, loseOnce(insert(1))))
	require.Equal(t, 0, txn.QueueRunning(b.pool, "deadline-turn"))

	// One call holds a turn until released.
	release, held := holdTurn(tctx, b, opts)

	// Another call loses a conflict; its retry must run alone, so it
	// waits for the turn held above until its deadline.
	cctx, ccancel := context.WithTimeout(tctx, 500*time.Millisecond)
	defer ccancel()
	attempts := 0
	err := txn.WithTx(cctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(ctx, raise("40001"))
		return err
	})
	close(release)
	require.NoError(t, <-held)

	require.Equal(t, 1, attempts, "the retry never had its turn")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "40001", retry.SQLState(err), "the conflict the call lost is gone from its error: %v", err)
}

// The same when the deadline ends an attempt after earlier ones lost to
// conflicts: the error still reaches the last conflict.
func TestDeadlineDuringARetryKeepsTheLastConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(b.ctx, 500*time.Millisecond)
	defer cancel()
	attempts := 0
	err := txn.WithTx(ctx, b.pool, txn.Options{Name: "deadline-attempt", NoRetryQueue: true}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if attempts == 1 {
			_, err := tx.Exec(ctx, raise("40001"))
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_sleep(5)")
		return err
	})
	require.Equal(t, 2, attempts)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "40001", retry.SQLState(err), "the conflict the call lost is gone from its error: %v", err)
}

// endAttempts is a TxEndObserver that keeps the attempts TxEnd reports.
type endAttempts struct{ attempts chan int }

func (o endAttempts) TxEnd(_ context.Context, d txn.TxEndData) { o.attempts <- d.Attempts }

// A call that ends while waiting for its turn reports, in TxEnd, the
// attempts that ran: the wait counts against the deadline, not as an
// attempt (package documentation, "Retry budget"), and no TxAttemptStart
// was called for it.
func TestTurnWaitIsNotReportedAsAnAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	opts := txn.Options{Name: "turn-attempts", Retry: fastRetry(5)}
	require.NoError(t, txn.WithTx(tctx, b.pool, opts, loseOnce(insert(1))))

	release, held := holdTurn(tctx, b, opts)

	obs := endAttempts{attempts: make(chan int, 1)}
	observed := opts
	observed.Observer = obs
	cctx, ccancel := context.WithTimeout(tctx, 300*time.Millisecond)
	defer ccancel()
	ran := 0
	err := txn.WithTx(cctx, b.pool, observed, func(ctx context.Context, tx pgx.Tx) error {
		ran++
		_, err := tx.Exec(ctx, raise("40001"))
		return err
	})
	close(release)
	require.NoError(t, <-held)
	require.Error(t, err)
	require.Equal(t, 1, ran)
	require.Equal(t, ran, <-obs.attempts, "TxEnd counts the wait for a turn as an attempt")
}

// holdTurn starts a call of opts' transaction that holds its turn until
// release is closed, and returns once it holds it; held gets the call's
// error.
func holdTurn(ctx context.Context, b *bundle, opts txn.Options) (release chan struct{}, held chan error) {
	release = make(chan struct{})
	held = make(chan error, 1)
	holding := make(chan struct{})
	go func() {
		held <- txn.WithTx(ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			close(holding)
			<-release
			return insert(2)(ctx, tx)
		})
	}()
	<-holding
	return release, held
}
