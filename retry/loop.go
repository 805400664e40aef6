package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/txkit/txkit/internal/wait"
)

// Do calls fn until it returns nil or an error p does not retry, waiting
// between attempts as p says; a nil p is [Default]. It stops at once when ctx is done, and never
// starts a wait that would end after ctx's deadline. Errors that are not
// retryable are returned as they are; giving up on a retryable one returns
// an error matching ErrExhausted that wraps the last attempt's error.
//
// fn may run more than once: it must start its work afresh each time. A
// nil fn returns an error matching [ErrInvalid].
func Do(ctx context.Context, p *Policy, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errNilFn
	}
	return DoWith(ctx, p, Hooks{}, func(ctx context.Context, _ int) error { return fn(ctx) })
}

// Hooks customize DoWith. The zero value is what Do uses.
//
// Hooks follow txkit's observer convention for a building block: each
// event is a func field named On<Event>, given the event's data (OnRetry
// gets RetryData), so a new event is a new field and breaks no caller (see
// the txkit package documentation).
type Hooks struct {
	// Retryable decides whether an attempt's error is worth another
	// attempt; nil means p.Retryable.
	Retryable func(err error) bool
	// OnRetry is called after a failed attempt that will be retried,
	// before the wait. The wait it is given is never negative.
	OnRetry func(RetryData)
}

// RetryData describes a failed attempt that is about to be retried: the
// data of the Retry event, which OnRetry receives.
type RetryData struct {
	Attempt  int           // the attempt that failed, from 1
	Err      error         // its error
	SQLState string        // the SQLSTATE that made it retryable, if any
	Wait     time.Duration // how long the loop waits before the next attempt
}

// DoWith is Do with hooks; fn also learns the attempt number, from 1.
func DoWith(ctx context.Context, p *Policy, h Hooks, fn func(ctx context.Context, attempt int) error) error {
	if fn == nil {
		return errNilFn
	}
	// The loop's state lives on the stack, and the hooks are not stored
	// in it, so that a call whose first attempt succeeds allocates
	// nothing here, nor makes the caller's hook closures escape.
	l := loop{q: p.withDefaults(), start: now()}
	retryable := h.Retryable
	if retryable == nil {
		retryable = l.q.Retryable
	}
	var last error // the last attempt's error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return stopped(ctx, attempt-1, last)
		}
		err := fn(ctx, attempt)
		if err == nil {
			return nil
		}
		if !retryable(err) {
			if last != nil && ctx.Err() != nil && endedBy(ctx, err) {
				// ctx ended this attempt (or what came before it, such as a
				// wait of the caller's own) after earlier ones failed
				// retryably: the loop was stopped by ctx, and its error
				// keeps the last retryable one, as between attempts.
				return stopped(ctx, attempt-1, last)
			}
			return err
		}
		last = err
		if ctx.Err() != nil {
			return stopped(ctx, attempt, err)
		}
		d, stop := l.nextWait(ctx, attempt, last)
		if stop != nil {
			return stop
		}
		if h.OnRetry != nil {
			h.OnRetry(RetryData{Attempt: attempt, Err: err, SQLState: SQLState(err), Wait: d})
		}
		wait.Sleep(ctx, d)
	}
}

// loop is the state of one DoWith between attempts.
type loop struct {
	q        Policy          // p with the defaults filled in
	schedule backoff.BackOff // made on the first retry: most calls never need one
	start    time.Time
}

// nextWait is how long to wait after the failed attempt before the next
// one, or, when the policy or ctx's deadline leaves no room for another
// attempt, the ExhaustedError that says why.
func (l *loop) nextWait(ctx context.Context, attempt int, last error) (time.Duration, error) {
	if l.q.MaxAttempts > 0 && attempt >= l.q.MaxAttempts {
		return 0, l.exhausted(attempt, fmt.Sprintf("the policy allows %d", l.q.MaxAttempts), last)
	}
	if l.schedule == nil {
		l.schedule = l.q.schedule()
	}
	d := l.schedule.NextBackOff()
	// The schedule's own clock starts at the first retry, so the
	// elapsed-time bound is checked against the first attempt here,
	// counting the wait, as the deadline is below: an attempt that would
	// start after the bound is not made.
	if d == backoff.Stop || (l.q.MaxElapsedTime > 0 && now().Sub(l.start)+d > l.q.MaxElapsedTime) {
		return 0, l.exhausted(attempt, fmt.Sprintf("the policy allows %v in all", l.q.MaxElapsedTime), last)
	}
	// withDefaults keeps every wait in range; this is the last guard
	// against sleeping, and reporting, a negative one.
	d = max(d, 0)
	if deadline, ok := ctx.Deadline(); ok && now().Add(d).After(deadline) {
		return 0, l.exhausted(attempt, "the next wait would pass the context deadline", last)
	}
	return d, nil
}

func (l *loop) exhausted(attempt int, reason string, last error) error {
	return &ExhaustedError{Attempts: attempt, Elapsed: now().Sub(l.start), Reason: reason, Err: last}
}

// now is the loop's clock; tests replace it to play out elapsed time.
var now = time.Now

// endedBy reports whether err says that ctx ended: its cause, or the
// context package's errors, which pgx wraps.
func endedBy(ctx context.Context, err error) bool {
	return errors.Is(err, context.Cause(ctx)) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// stopped is the error for a loop ended by its context: it matches the
// context's cause and still wraps the last attempt's error, if any.
func stopped(ctx context.Context, attempts int, last error) error {
	if last == nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("retry: stopped after %d attempt(s): %w (last error: %w)", attempts, context.Cause(ctx), last)
}
