package advisory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/purpose"
	"github.com/txkit/txkit/retry"
)

// Acquire waits for the session lock called name and returns it held. The
// lock holds a connection of its own from pool until [Lock.Release]; a
// watcher checks that connection every [CheckInterval] and closes
// [Lock.Lost] if it dies.
//
// The wait ends when ctx is cancelled (the server is sent a cancel request,
// so the connection stays usable), or at the ctx deadline or [Timeout]
// (the server's lock_timeout, so nothing polls). A wait that timed out
// returns an error matching [ErrNotAcquired] that says who holds the lock;
// a cancelled one returns ctx's error.
//
// The server is checked on the way, at no extra round trip: CockroachDB
// ([ErrUnsupportedServer]) and connection poolers ([ErrPooler]) are
// refused, because a session lock there would not exclude anything.
func Acquire(ctx context.Context, pool *pgxpool.Pool, name string, opts ...Option) (*Lock, error) {
	return acquire(ctx, pool, name, false, opts)
}

// TryAcquire takes the session lock called name if it is free and returns
// an error matching [ErrNotAcquired] at once if another session holds it.
// Otherwise it is Acquire.
func TryAcquire(ctx context.Context, pool *pgxpool.Pool, name string, opts ...Option) (*Lock, error) {
	return acquire(ctx, pool, name, true, opts)
}

func acquire(ctx context.Context, pool *pgxpool.Pool, name string, try bool, opts []Option) (*Lock, error) {
	if pool == nil {
		return nil, ErrNilPool
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	k, err := makeKey(o.namespace, name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	obs := o.observer
	if obs != nil {
		ctx = obs.AcquireStart(ctx, AcquireStartData{Name: name, Namespace: o.namespace, Kind: SessionLock, Shared: o.shared, Try: try})
	}
	h, err := lockSession(ctx, pool, name, k, o, try, start)
	if obs != nil {
		d := AcquireEndData{Name: name, Namespace: o.namespace, Kind: SessionLock, Shared: o.shared, Try: try,
			Acquired: err == nil, Wait: time.Since(start), Err: err}
		if h != nil {
			d.Token, d.PID = h.token, uint32(h.pid)
		}
		obs.AcquireEnd(ctx, d)
	}
	if err != nil {
		return nil, err
	}
	if obs != nil {
		h.callers = captureCallers(3)
	}
	return newLock(h), nil
}

// lockSession takes a pool connection and runs the lock statement on it.
// On success the connection belongs to the returned held; on failure it
// has been returned to the pool clean, or closed.
func lockSession(ctx context.Context, pool *pgxpool.Pool, name string, k key, o *options, try bool, start time.Time) (*held, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("advisory: lock %s: %w", quoteName(name), context.Cause(ctx))
	}
	// The connection is held until Release, on purpose: a pool that
	// reports leaks (txkit's pool package) labels it instead.
	if _, marked := purpose.Label(ctx); !marked {
		ctx = purpose.Mark(ctx, "advisory lock "+quoteName(name))
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("advisory: lock %s: acquiring a connection: %w", quoteName(name), err)
	}
	pc := conn.Conn().PgConn()
	if v := pc.ParameterStatus("crdb_version"); v != "" {
		conn.Release()
		return nil, &serverError{what: "CockroachDB " + v}
	}
	timeout, byDeadline := waitBound(ctx, o.timeout, try)

	var (
		pid    int64
		locked *bool
		token  *int64
	)
	run := func(sql string, args []any) (bool, error) {
		return interruptible(ctx, pc, func(qctx context.Context) error {
			return conn.QueryRow(qctx, sql, args...).Scan(&pid, &locked, &token)
		})
	}
	sql, args := sessionStatement(k, try, o.shared, o.fence, o.skipPooler, pc.PID(), timeout)
	cancelSent, err := run(sql, args)
	if o.fence && !cancelSent && retry.SQLState(err) == pgerrcode.UndefinedTable {
		// The statement failed at parse time, before locking anything.
		if err = CreateFenceTable(ctx, conn); err == nil {
			cancelSent, err = run(sql, args)
		}
	}

	switch {
	case err == nil && cancelSent:
		// The statement finished (the lock perhaps granted) as ctx ended,
		// and the cancel request may still reach the session (see
		// interruptible): the connection cannot be trusted with anyone's
		// next statement. Closing it also drops the lock if it was taken.
		discard(conn)
		return nil, fmt.Errorf("advisory: lock %s: %w", quoteName(name), context.Cause(ctx))
	case err == nil && locked == nil:
		conn.Release()
		return nil, &poolerError{name: name, startupPID: pc.PID(), serverBackend: pid}
	case err == nil && !*locked:
		holders := lookupHolders(ctx, conn, k)
		conn.Release()
		return nil, &NotAcquiredError{Name: name, Waited: time.Since(start), Holders: holders}
	case err == nil:
		h := &held{name: name, k: k, shared: o.shared, conn: conn, pid: pid, acquired: time.Now(),
			obs: o.observer, interval: o.interval, timeout: o.checkTimeout()}
		if token != nil {
			h.token = *token
		}
		return h, nil
	}
	return nil, failedLock(ctx, conn, name, k, o.shared, err, cancelSent, byDeadline, start)
}

// failedLock cleans up after a lock statement that returned an error and
// says why the lock was not taken.
func failedLock(ctx context.Context, conn *pgxpool.Conn, name string, k key, shared bool, err error, cancelSent, byDeadline bool, start time.Time) error {
	state := retry.SQLState(err)
	ctxDone := ctx.Err() != nil
	timedOut := state == pgerrcode.LockNotAvailable || (ctxDone && byDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded))
	var holders []Holder
	if timedOut && !conn.Conn().IsClosed() {
		holders = lookupHolders(ctx, conn, k)
	}
	switch {
	case conn.Conn().IsClosed():
		discard(conn)
	case cancelSent && state != pgerrcode.QueryCanceled:
		// The cancel request was not what ended the statement, so its
		// signal may still be pending: see interruptible.
		discard(conn)
	default:
		// The lock may have been granted just before the statement failed
		// (a cancel or timeout arriving right after the grant, or a
		// failure in the fencing write): release it if this session holds
		// it, so that the connection goes back clean.
		if cleanLock(ctx, conn, k, shared) {
			conn.Release()
		} else {
			discard(conn)
		}
	}
	switch {
	case timedOut:
		cause := err
		if byDeadline {
			// The ctx deadline set the server's lock_timeout, whichever of
			// the two fired first.
			cause = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return &NotAcquiredError{Name: name, Waited: time.Since(start), Holders: holders, Err: cause}
	case ctxDone:
		return fmt.Errorf("advisory: waiting for lock %s: %w", quoteName(name), context.Cause(ctx))
	}
	return fmt.Errorf("advisory: lock %s: %w", quoteName(name), err)
}

// waitBound is the lock_timeout to set: the Timeout option or the time
// left before ctx's deadline, whichever is shorter; byDeadline says it came
// from the deadline. A try does not wait. The Timeout option is never
// beyond pgtimeout.Max, so only a deadline can be: then no lock_timeout is
// set (see sessionStatement), and the wait ends at the deadline by ctx
// alone (a cancel request), still reported as a wait that timed out.
func waitBound(ctx context.Context, timeout time.Duration, try bool) (d time.Duration, byDeadline bool) {
	if try {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			left = time.Millisecond
		}
		if timeout == 0 || left < timeout {
			return left, true
		}
	}
	return timeout, false
}

// sideTimeout bounds the statements run on the error path: looking up the
// holders, and releasing a lock that may have been granted.
const sideTimeout = 2 * time.Second

func sideCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sideTimeout)
}

// cleanLock releases k if this session holds it and reports whether the
// connection is known clean.
func cleanLock(ctx context.Context, conn *pgxpool.Conn, k key, shared bool) bool {
	ctx, cancel := sideCtx(ctx)
	defer cancel()
	sql, args := cleanupStatement(k, shared)
	var n int64
	return conn.QueryRow(ctx, sql, args...).Scan(&n) == nil
}

// lookupHolders asks who holds k. It is best effort: a failure gives none.
func lookupHolders(ctx context.Context, conn *pgxpool.Conn, k key) []Holder {
	ctx, cancel := sideCtx(ctx)
	defer cancel()
	sql, args := holdersStatement(k)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var hs []Holder
	for rows.Next() {
		var h Holder
		var pid int64
		if rows.Scan(&pid, &h.Shared, &h.ApplicationName, &h.ClientAddr) != nil {
			return nil
		}
		h.PID = uint32(pid)
		hs = append(hs, h)
	}
	return hs
}
