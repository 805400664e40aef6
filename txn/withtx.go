package txn

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/retry"
)

// WithTx runs fn in a transaction on db and commits it if fn returns nil.
//
// The transaction starts with the isolation level, access mode and SET LOCAL
// timeouts of opts, sent with BEGIN, and on a connection WithTx takes from
// a pool or a Router BEGIN rides with fn's first statement, so a call costs
// fn's statements and COMMIT (see the package documentation for the calls
// that send BEGIN alone). If the server aborts it with a serialization failure (40001)
// or a deadlock (40P01), at any statement or at COMMIT, WithTx rolls back
// and runs the whole transaction again from BEGIN, waiting as opts.Retry
// says; the decision rests on what the server said, even if fn wrapped the
// error with %v or swallowed it.
//
// fn may therefore run more than once: it must not keep state between runs,
// and side effects that must happen once belong in [AfterCommit]. Wrap
// errors with %w. fn's error is returned as it is, after a rollback, also
// when a context fn made for a statement ended and pgx closed the
// connection; a connection the network or server broke before COMMIT runs
// the transaction again. If fn
// panics, the transaction is rolled back and the panic goes on. Commit and
// Rollback on the tx given to fn return [ErrManaged]: return an error to
// roll back.
//
// If ctx already carries a transaction (see [FromContext]), fn runs inside
// it, in a savepoint (see the package documentation), unless
// opts.RequiresNew is set. A panic there rolls back to the savepoint
// before it goes on.
//
// A COMMIT whose answer is lost to a broken connection is settled by asking
// the server on another connection: WithTx reports success only if the
// transaction committed, retries if it aborted or had no transaction id to
// ask about (see [ErrCommitUnknown]; a READ ONLY one is a success where its
// COMMIT cannot fail, see the package documentation), and otherwise
// returns an error matching [ErrCommitUnknown].
func WithTx(ctx context.Context, db Beginner, opts Options, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return withTx(ctx, db, opts, fn, codeOf(fn))
}

// withTx is WithTx; code identifies the transaction for turn-taking when
// it has no Name (see queue.go).
func withTx(ctx context.Context, db Beginner, opts Options, fn func(ctx context.Context, tx pgx.Tx) error, code uintptr) error {
	if isNil(db) {
		return errNilBeginner
	}
	if fn == nil {
		return errNilFn
	}
	if err := opts.validate(); err != nil {
		return err
	}
	outer := stateFrom(ctx)
	if outer != nil && !opts.RequiresNew {
		return nested(ctx, outer, &opts, fn)
	}
	return top(ctx, db, &opts, fn, code, outer != nil)
}

// WithTxValue is WithTx for a fn that produces a value. The value of the
// attempt that committed is returned; on error, the zero value.
func WithTxValue[T any](ctx context.Context, db Beginner, opts Options, fn func(ctx context.Context, tx pgx.Tx) (T, error)) (T, error) {
	var out T
	if fn == nil {
		return out, WithTx(ctx, db, opts, nil)
	}
	err := withTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
		v, err := fn(ctx, tx)
		if err != nil {
			return err
		}
		out = v
		return nil
	}, codeOf(fn))
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// top runs an outermost transaction with its retry loop; inTx says that
// ctx carries another transaction (RequiresNew), whose attempt may hold a
// turn this call would wait for.
func top(ctx context.Context, db Beginner, opts *Options, fn func(context.Context, pgx.Tx) error, code uintptr, inTx bool) error {
	obs := opts.Observer
	var start time.Time // read only for TxEnd: an unobserved call skips the clock
	if _, ok := obs.(TxEndObserver); ok {
		start = time.Now()
	}
	if o, ok := obs.(TxStartObserver); ok {
		ctx = o.TxStart(ctx, TxStartData{Name: opts.Name, Isolation: opts.Isolation, ReadOnly: opts.ReadOnly})
	}
	if o, ok := obs.(TxLeakObserver); ok && opts.LeakThreshold > 0 {
		stop := watchLeak(opts.Name, opts.LeakThreshold, o, debug.Stack())
		defer stop()
	}
	policy := opts.retryPolicy(ctx, inTx)
	// Under the deadline budget only conflicts are retried until the
	// deadline; a connection lost again and again, or a rerun, keeps the
	// count of retry.DefaultMaxAttempts, so that a statement that brings
	// the server down is not sent for the caller's whole deadline.
	counted := 0
	countOthers := policy == untilDeadline
	beginSQL := opts.beginSQL()
	var (
		attempts  int
		outcome   Outcome
		callbacks []func(context.Context)
	)
	var bound lockBound
	hooks := retry.Hooks{
		Retryable: func(err error) bool {
			if policy.Retryable(err) || bound.ranOut(err) {
				return true
			}
			if !isConnLost(err) && !rerunnable(err) {
				return false
			}
			counted++
			return !countOthers || counted < retry.DefaultMaxAttempts
		},
	}
	if o, ok := obs.(TxRetryObserver); ok {
		hooks.OnRetry = func(ri retry.RetryData) {
			o.TxRetry(ctx, TxRetryData{Name: opts.Name, Attempt: ri.Attempt, SQLState: ri.SQLState, Err: ri.Err, Wait: ri.Wait})
		}
	}
	queue := newQueueSlot(db, opts, code, inTx)
	defer queue.done(false) // a panicking fn still gives its turn back
	losses := 0             // attempts lost to a conflict
	err := retry.DoWith(ctx, policy, hooks, func(ctx context.Context, attempt int) error {
		hot, err := queue.wait(ctx, losses)
		if err != nil {
			return err // a wait for a turn is not an attempt
		}
		attempts = attempt
		// A hot transaction's first attempt bounds its lock waits as a
		// retry after a conflict does; a retry follows its own conflicts.
		bound.hot = hot && attempt == 1
		outcome, callbacks, err = runAttempt(ctx, db, opts, bound.begin(opts, beginSQL), attempt, fn, &bound, &queue)
		lost := bound.after(err, policy)
		if lost {
			losses++
		}
		queue.done(lost)
		return err
	})
	if outcome == Committed {
		runCallbacks(ctx, opts.Name, obs, callbacks)
	}
	if o, ok := obs.(TxEndObserver); ok {
		o.TxEnd(ctx, TxEndData{Name: opts.Name, Attempts: attempts, Outcome: outcome, Duration: time.Since(start), Err: err})
	}
	return err
}

// runAttempt is one transaction from BEGIN to COMMIT or ROLLBACK. It returns
// the AfterCommit callbacks registered during it, and tells bound whether
// it reached COMMIT.
func runAttempt(ctx context.Context, db Beginner, opts *Options, beginSQL string, attempt int,
	fn func(context.Context, pgx.Tx) error, bound *lockBound, queue *queueSlot) (outcome Outcome, callbacks []func(context.Context), err error) {
	var start time.Time // read only for TxAttemptEnd
	if _, ok := opts.Observer.(TxAttemptEndObserver); ok {
		start = time.Now()
	}
	ctx = attemptStart(ctx, opts, attempt)
	if o, ok := opts.Observer.(TxAttemptEndObserver); ok {
		defer func() {
			o.TxAttemptEnd(ctx, TxAttemptEndData{Name: opts.Name, Attempt: attempt, Outcome: outcome, Duration: time.Since(start), Err: err})
		}()
	}
	b, err := begin(ctx, db, beginSQL, RouteRequest{ReadOnly: opts.ReadOnly, Attempt: attempt, Name: opts.Name, Isolation: opts.Isolation})
	if err != nil {
		return RolledBack, nil, err
	}
	defer func() { err = b.finish(outcome, err) }()
	if bound.current != 0 {
		// This attempt's lock waits are bounded, and a wait that runs out
		// is retried: inside the attempt, 55P03 is a retryable error like
		// 40001, so the recorder keeps it even when a savepoint rolls it
		// back and fn swallows it, and the attempt runs again instead of
		// committing without the work the server refused.
		opts = bound.attemptOptions(opts)
	}
	st, fnCtx := newState(ctx, b.tx, b.pending(ctx, beginSQL), opts)
	finished := false
	defer func() {
		// Unset only while fn panics: roll back and let the panic go on,
		// with its stack intact.
		if !finished {
			rollback(ctx, st.txv.inner)
		}
	}()

	fnErr := fn(fnCtx, st.tx)
	finished = true // fn returned: every path below ends the transaction itself
	st.close()
	// What was begun: nil if BEGIN is still pending (fn sent nothing).
	b.tx = st.txv.inner
	if fnErr == nil && errors.Is(st.txv.beginErr, errEnded) {
		// fn sent COMMIT or ROLLBACK itself: there is nothing to end, and
		// WithTx knows no more of the outcome than fn saw.
		return CommitUnknown, nil, errEnded
	}
	if fnErr == nil && st.txv.beginErr != nil {
		// fn went on after BEGIN failed: nothing it did ran, so the attempt
		// fails as a failed BEGIN would.
		fnErr = st.txv.beginErr
	}
	if fnErr != nil {
		if b.conn != nil && b.conn.IsClosed() && ctx.Err() == nil && !ownContextDone(fnErr) && !st.txv.clientBroke {
			// The connection died before COMMIT was sent, so nothing
			// committed: the whole transaction can run again.
			return RolledBack, nil, &connLostError{when: "before COMMIT", err: fnErr}
		}
		rollback(ctx, b.tx)
		return RolledBack, nil, withServerCause(fnErr, st.rec.get(), opts.Retry)
	}
	if server := st.rec.get(); server != nil {
		// fn returned nil, but the server refused part of it with a
		// retryable error. If a savepoint rolled that back, COMMIT would
		// succeed without that part; if not, COMMIT would answer
		// ROLLBACK. Either way, run the whole transaction again.
		rollback(ctx, b.tx)
		return RolledBack, nil, &retryAttemptError{server: server}
	}
	if ctx.Err() != nil {
		// Cancelled while fn ran: do not start a COMMIT the caller no
		// longer waits for.
		rollback(ctx, b.tx)
		return RolledBack, nil, context.Cause(ctx)
	}
	if b.tx == nil {
		// fn sent no statement: no BEGIN was sent, and there is nothing
		// to commit.
		return Committed, st.takeCallbacks(), nil
	}
	if b.conn != nil && !b.conn.IsClosed() && b.conn.PgConn().TxStatus() == 'I' {
		// fn ended the transaction itself, by a way checkEnded did not
		// see (its connection, say): WithTx sends no COMMIT of its own.
		return CommitUnknown, nil, errEnded
	}
	if b.conn != nil && b.conn.PgConn().IsBusy() {
		// fn returned with a result unread (rows not closed, a QueryRow
		// not scanned): COMMIT written behind it would be read as a lost
		// answer. pgx's own Commit fails there and closes the
		// connection; so does WithTx, and nothing commits.
		closeConn(ctx, b.conn.PgConn())
		return RolledBack, nil, errOpenResult
	}
	bound.atCommit = true
	// The entry, not the slot: a pointer to the slot on begun would move
	// the slot to the heap, an allocation on every call.
	b.turn = queue.entry
	res := commit(ctx, &b, opts)
	if b.turn == nil {
		queue.entry = nil // commit gave the turn up to settle a lost answer
	}
	if o, ok := opts.Observer.(CommitResolvedObserver); ok && res.resolved != nil {
		d := *res.resolved
		d.Name = opts.Name
		o.CommitResolved(ctx, d)
	}
	if res.err != nil {
		return res.outcome, nil, withServerCause(res.err, st.rec.get(), opts.Retry)
	}
	return Committed, st.takeCallbacks(), nil
}

// ownContextDone reports whether fn's error says a context fn made itself
// (a per-statement context.WithTimeout) ended while WithTx's ctx is live.
// pgx closes the connection when a statement's ctx ends mid-query, but
// that is fn's own error, returned as it is, not a broken network to
// retry: a network or server failure does not match the context errors.
func ownContextDone(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// rollbackTimeout bounds a ROLLBACK sent after ctx was cancelled. Sending it
// keeps a healthy connection in the pool; if it fails, pgx closes the
// connection and the pool discards it, so a broken one is never reused.
const rollbackTimeout = 5 * time.Second

// rollback rolls tx back; a nil tx, a transaction whose BEGIN was never
// sent, needs nothing.
func rollback(ctx context.Context, tx pgx.Tx) {
	if tx == nil {
		return
	}
	ctx, cancel := endContext(ctx)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// endContext is ctx for a statement that ends a transaction or savepoint:
// ctx itself while it is live, else a detached one bounded by
// rollbackTimeout.
func endContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
}
