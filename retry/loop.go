package retry

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Do calls fn until it returns nil or an error p does not retry, waiting
// between attempts as p says; a nil p is [Default]. It stops at once when ctx is done, and never
// starts a wait that would end after ctx's deadline. Errors that are not
// retryable are returned as they are; giving up on a retryable one returns
// an error matching ErrExhausted that wraps the last attempt's error.
//
// fn may run more than once: it must start its work afresh each time. A
// nil fn returns [ErrNilFunc].
func Do(ctx context.Context, p *Policy, fn func(ctx context.Context) error) error {
	if fn == nil {
		return ErrNilFunc
	}
	return DoWith(ctx, p, Hooks{}, func(ctx context.Context, _ int) error { return fn(ctx) })
}

// Hooks customize DoWith. The zero value is what Do uses.
type Hooks struct {
	// Retryable decides whether an attempt's error is worth another
	// attempt; nil means p.Retryable.
	Retryable func(err error) bool
	// OnRetry is called after a failed attempt that will be retried,
	// before the wait. The wait it is given is never negative.
	OnRetry func(RetryInfo)
}

// RetryInfo describes a failed attempt that is about to be retried.
type RetryInfo struct {
	Attempt  int           // the attempt that failed, from 1
	Err      error         // its error
	SQLState string        // the SQLSTATE that made it retryable, if any
	Wait     time.Duration // how long the loop waits before the next attempt
}

// DoWith is Do with hooks; fn also learns the attempt number, from 1.
func DoWith(ctx context.Context, p *Policy, h Hooks, fn func(ctx context.Context, attempt int) error) error {
	if fn == nil {
		return ErrNilFunc
	}
	q := p.withDefaults()
	retryable := h.Retryable
	if retryable == nil {
		retryable = q.Retryable
	}
	var schedule backoff.BackOff // made on the first retry: most calls never need one
	start := now()
	var last error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return stopped(ctx, attempt-1, last)
		}
		err := fn(ctx, attempt)
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
		last = err
		if ctx.Err() != nil {
			return stopped(ctx, attempt, err)
		}
		exhausted := func(reason string) error {
			return &ExhaustedError{Attempts: attempt, Elapsed: now().Sub(start), Reason: reason, Err: err}
		}
		if q.MaxAttempts > 0 && attempt >= q.MaxAttempts {
			return exhausted(fmt.Sprintf("the policy allows %d", q.MaxAttempts))
		}
		if schedule == nil {
			schedule = q.schedule()
		}
		wait := schedule.NextBackOff()
		// The schedule's own clock starts at the first retry, so the
		// elapsed-time bound is checked against the first attempt here,
		// counting the wait, as the deadline is below: an attempt that
		// would start after the bound is not made.
		if wait == backoff.Stop || (q.MaxElapsedTime > 0 && now().Sub(start)+wait > q.MaxElapsedTime) {
			return exhausted(fmt.Sprintf("the policy allows %v in all", q.MaxElapsedTime))
		}
		// withDefaults keeps every wait in range; this is the last guard
		// against sleeping, and reporting, a negative one.
		wait = max(wait, 0)
		if deadline, ok := ctx.Deadline(); ok && now().Add(wait).After(deadline) {
			return exhausted("the next wait would pass the context deadline")
		}
		if h.OnRetry != nil {
			h.OnRetry(RetryInfo{Attempt: attempt, Err: err, SQLState: SQLState(err), Wait: wait})
		}
		sleep(ctx, wait)
	}
}

// now is the loop's clock; tests replace it to play out elapsed time.
var now = time.Now

// stopped is the error for a loop ended by its context: it matches the
// context's cause and still wraps the last attempt's error, if any.
func stopped(ctx context.Context, attempts int, last error) error {
	if last == nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("retry: stopped after %d attempt(s): %w (last error: %w)", attempts, context.Cause(ctx), last)
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
