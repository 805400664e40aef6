package advisory

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// releaseTimeout bounds the Release that WithLock and Lead do after fn: it
// runs even when the caller's ctx is done, so that the connection goes
// back to the pool unlocked rather than being closed.
const releaseTimeout = 5 * time.Second

// WithLock acquires the session lock called name (see [Acquire]), runs fn
// while holding it, and releases it when fn returns or panics.
//
// fn's ctx is cancelled if the lock is lost, with a cause matching
// [ErrLockLost] (see context.Cause): stop work there, because another
// session may hold the lock by then. If the lock was lost at any point
// while fn ran, WithLock returns an error matching ErrLockLost, joined with
// fn's error if fn failed, even if fn returned nil: the work may have
// overlapped with another holder's. Otherwise it returns fn's error as it
// is, or the error of the release.
//
// A nil fn is refused with an error matching [ErrInvalid].
func WithLock(ctx context.Context, pool *pgxpool.Pool, name string, opts Options, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errNil("fn")
	}
	l, err := Acquire(ctx, pool, name, opts)
	if err != nil {
		return err
	}
	_, err = l.run(ctx, func(ctx context.Context) error { return fn(ctx) })
	return err
}

// run runs fn with a ctx cancelled on loss, then releases l. lost reports
// whether the lock was lost while fn ran.
func (l *Lock) run(ctx context.Context, fn func(ctx context.Context) error) (lost bool, err error) {
	lctx, cancel := context.WithCancelCause(ctx)
	remove := l.h.addOnLost(func(err error) { cancel(err) })
	done := false
	defer func() {
		if !done { // fn panicked: release and let the panic go on
			remove()
			cancel(nil)
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			_ = l.Release(rctx)
			rcancel()
		}
	}()
	fnErr := fn(lctx)
	done = true
	remove()
	cancel(nil)

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	relErr := l.Release(rctx)
	if errors.Is(relErr, ErrLockLost) {
		if fnErr != nil {
			return true, errors.Join(relErr, fnErr)
		}
		return true, relErr
	}
	if fnErr != nil {
		return false, fnErr
	}
	return false, relErr
}
