package advisory

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/txconn"
)

// LockTx takes the transaction lock called name in tx, waiting for it if
// another session holds it. The lock is released by COMMIT or ROLLBACK and
// cannot be released earlier. Transaction locks hold no connection of
// their own and work through PgBouncer in transaction mode; inside
// txn.WithTx, pass the tx it gives fn.
//
// The wait ends at the ctx deadline or [Options.LockTimeout] (a
// lock_timeout set for the lock statement only; a shorter lock_timeout of
// the transaction still applies and is left as it was), with an error
// matching [ErrNotAcquired] that also wraps the server's
// lock_not_available error, or when ctx is cancelled (by a cancel request,
// which keeps the connection). Either way the transaction is aborted by the
// failed statement and must be rolled back; a retry policy that retries
// lock_not_available (55P03) runs it again. Of the options, Shared,
// Namespace, LockTimeout and Observer apply.
func LockTx(ctx context.Context, tx pgx.Tx, name string, opts Options) error {
	_, err := lockTx(ctx, tx, name, false, opts)
	return err
}

// TryLockTx takes the transaction lock called name in tx if it is free and
// reports whether it did; it never waits, and a lock held by someone else
// returns false and no error, leaving the transaction usable.
func TryLockTx(ctx context.Context, tx pgx.Tx, name string, opts Options) (bool, error) {
	return lockTx(ctx, tx, name, true, opts)
}

func lockTx(ctx context.Context, tx pgx.Tx, name string, try bool, opts Options) (bool, error) {
	if tx == nil {
		return false, errNil("transaction")
	}
	r, err := newRequest(name, opts, TxLock, try)
	if err != nil {
		return false, err
	}
	if conn := txconn.Of(tx); conn != nil {
		if err := checkServer(conn.PgConn()); err != nil {
			return false, err
		}
	}
	r.start = time.Now()
	ctx = r.observeStart(ctx)
	ok, err := runTxLock(ctx, tx, r)
	endErr := err
	if err == nil && !ok {
		endErr = &NotAcquiredError{Name: name, Waited: time.Since(r.start)}
	}
	r.observeEnd(ctx, ok, endErr, 0, 0)
	return ok, err
}

func runTxLock(ctx context.Context, tx pgx.Tx, r *request) (bool, error) {
	timeout, byDeadline := waitBound(ctx, r.o.LockTimeout, r.try)
	sql, args := txStatement(r.k, r.try, r.o.Shared, timeout)
	if r.try {
		var ok bool
		if err := tx.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
			return false, fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), err)
		}
		return ok, nil
	}
	exec := func(ctx context.Context) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	var err error
	cancelSent := false
	if conn := txconn.Of(tx); conn != nil {
		cancelSent, err = interruptible(ctx, conn.PgConn(), exec)
	} else {
		err = exec(ctx)
	}
	switch {
	case err == nil && cancelSent:
		// Granted as ctx ended. The lock lasts until the transaction ends,
		// which the caller does now that its ctx is done.
		return false, fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), context.Cause(ctx))
	case err == nil:
		return true, nil
	case waitTimedOut(ctx, err, byDeadline):
		return false, notAcquired(r, err, byDeadline, nil)
	case ctx.Err() != nil:
		return false, fmt.Errorf("advisory: waiting for lock %s: %w: %w", ident.Show(r.name), context.Cause(ctx), err)
	}
	return false, fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), err)
}
