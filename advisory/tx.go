package advisory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/retry"
)

// LockTx takes the transaction lock called name in tx, waiting for it if
// another session holds it. The lock is released by COMMIT or ROLLBACK and
// cannot be released earlier. Transaction locks hold no connection of
// their own and work through PgBouncer in transaction mode; inside
// txn.WithTx, pass the tx it gives fn.
//
// The wait ends at the ctx deadline or [Timeout] (a lock_timeout set for
// the lock statement only; a shorter lock_timeout of the transaction still
// applies and is left as it was), with an error matching [ErrNotAcquired]
// that also wraps the server's lock_not_available error, or when ctx is
// cancelled (by a cancel request, which keeps the connection). Either way
// the transaction is aborted by the failed statement and must be rolled
// back; a retry policy that retries lock_not_available (55P03) runs it
// again. Of the options, Shared, Namespace, Timeout and WithObserver apply.
func LockTx(ctx context.Context, tx pgx.Tx, name string, opts ...Option) error {
	_, err := lockTx(ctx, tx, name, false, opts)
	return err
}

// TryLockTx takes the transaction lock called name in tx if it is free and
// reports whether it did; it never waits, and a lock held by someone else
// returns false and no error, leaving the transaction usable.
func TryLockTx(ctx context.Context, tx pgx.Tx, name string, opts ...Option) (bool, error) {
	return lockTx(ctx, tx, name, true, opts)
}

func lockTx(ctx context.Context, tx pgx.Tx, name string, try bool, opts []Option) (bool, error) {
	if tx == nil {
		return false, ErrNilTx
	}
	o, err := buildOptions(opts)
	if err != nil {
		return false, err
	}
	k, err := makeKey(o.namespace, name)
	if err != nil {
		return false, err
	}
	conn := tx.Conn()
	if conn != nil {
		if v := conn.PgConn().ParameterStatus("crdb_version"); v != "" {
			return false, &serverError{what: "CockroachDB " + v}
		}
	}
	start := time.Now()
	obs := o.observer
	if obs != nil {
		ctx = obs.AcquireStart(ctx, AcquireStartData{Name: name, Namespace: o.namespace, Kind: TxLock, Shared: o.shared, Try: try})
	}
	ok, err := runTxLock(ctx, tx, name, k, o, try, start)
	if obs != nil {
		d := AcquireEndData{Name: name, Namespace: o.namespace, Kind: TxLock, Shared: o.shared, Try: try,
			Acquired: ok, Wait: time.Since(start), Err: err}
		if err == nil && !ok {
			d.Err = &NotAcquiredError{Name: name, Waited: d.Wait}
		}
		obs.AcquireEnd(ctx, d)
	}
	return ok, err
}

func runTxLock(ctx context.Context, tx pgx.Tx, name string, k key, o *options, try bool, start time.Time) (bool, error) {
	timeout, byDeadline := waitBound(ctx, o.timeout, try)
	sql, args := txStatement(k, try, o.shared, timeout)
	if try {
		var ok bool
		if err := tx.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
			return false, fmt.Errorf("advisory: lock %s: %w", quoteName(name), err)
		}
		return ok, nil
	}
	exec := func(ctx context.Context) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	var err error
	cancelSent := false
	if conn := tx.Conn(); conn != nil {
		cancelSent, err = interruptible(ctx, conn.PgConn(), exec)
	} else {
		err = exec(ctx)
	}
	ctxErr := ctx.Err()
	switch {
	case err == nil && cancelSent:
		// Granted as ctx ended. The lock lasts until the transaction ends,
		// which the caller does now that its ctx is done.
		return false, fmt.Errorf("advisory: lock %s: %w", quoteName(name), context.Cause(ctx))
	case err == nil:
		return true, nil
	case retry.SQLState(err) == pgerrcode.LockNotAvailable,
		ctxErr != nil && byDeadline && errors.Is(ctxErr, context.DeadlineExceeded):
		cause := err
		if byDeadline {
			cause = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return false, &NotAcquiredError{Name: name, Waited: time.Since(start), Err: cause}
	case ctxErr != nil:
		return false, fmt.Errorf("advisory: waiting for lock %s: %w: %w", quoteName(name), context.Cause(ctx), err)
	}
	return false, fmt.Errorf("advisory: lock %s: %w", quoteName(name), err)
}
