package advisory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/purpose"
	"github.com/txkit/txkit/retry"
)

// Acquire waits for the session lock called name and returns it held. The
// lock holds a connection of its own from pool until [Lock.Release]; a
// watcher checks that connection every [Options.CheckInterval] and closes
// [Lock.Lost] if it dies.
//
// The wait ends when ctx is cancelled (the server is sent a cancel request,
// so the connection stays usable), or at the ctx deadline or
// [Options.LockTimeout] (the server's lock_timeout, so nothing polls). A
// wait that timed out returns an error matching [ErrNotAcquired] that says
// who holds the lock; a cancelled one returns ctx's error.
//
// The server is checked on the way, at no extra round trip: CockroachDB
// ([ErrUnsupportedServer]) and connection poolers ([ErrPooler]) are
// refused, because a session lock there would not exclude anything.
func Acquire(ctx context.Context, pool *pgxpool.Pool, name string, opts Options) (*Lock, error) {
	return acquire(ctx, pool, name, false, opts)
}

// TryAcquire takes the session lock called name if it is free and returns
// an error matching [ErrNotAcquired] at once if another session holds it.
// Otherwise it is Acquire.
func TryAcquire(ctx context.Context, pool *pgxpool.Pool, name string, opts Options) (*Lock, error) {
	return acquire(ctx, pool, name, true, opts)
}

func acquire(ctx context.Context, pool *pgxpool.Pool, name string, try bool, opts Options) (*Lock, error) {
	if pool == nil {
		return nil, errNil("pool")
	}
	r, err := newRequest(name, opts, SessionLock, try)
	if err != nil {
		return nil, err
	}
	ctx = r.observeStart(ctx)
	h, err := lockSession(ctx, pool, r)
	if err != nil {
		r.observeEnd(ctx, false, err, 0, 0)
		return nil, err
	}
	r.observeEnd(ctx, true, nil, h.token, uint32(h.pid))
	if _, ok := opts.Observer.(LockLeakObserver); ok {
		h.callers = captureCallers(3)
	}
	return newLock(h), nil
}

// lockResult is what a lock statement came back with.
type lockResult struct {
	pid    int64  // the backend that ran it
	locked *bool  // nil: a pooler relays the session, nothing was locked
	token  *int64 // the fencing token, with Fence
	err    error
	// cancelSent: a cancel request was sent while the statement ran (see
	// interruptible).
	cancelSent bool
	// byDeadline: the lock_timeout came from ctx's deadline.
	byDeadline bool
}

// lockSession takes a pool connection and runs the lock statement on it.
// On success the connection belongs to the returned held; on failure it
// has been returned to the pool clean, or closed.
func lockSession(ctx context.Context, pool *pgxpool.Pool, r *request) (*held, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), context.Cause(ctx))
	}
	conn, err := sessionConn(ctx, pool, r.name)
	if err != nil {
		return nil, err
	}
	res := runSessionStatement(ctx, conn, r)
	if res.err != nil {
		return nil, failedLock(ctx, conn, r, res)
	}
	return settleSession(ctx, conn, r, res)
}

// sessionConn takes the pool connection that will hold the lock, and
// refuses a server that fakes advisory locks.
func sessionConn(ctx context.Context, pool *pgxpool.Pool, name string) (*pgxpool.Conn, error) {
	// The connection is held until Release, on purpose: a pool that
	// reports leaks (txkit's pool package) labels it instead.
	if _, marked := purpose.Label(ctx); !marked {
		ctx = purpose.Mark(ctx, "advisory lock "+ident.Show(name))
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("advisory: lock %s: acquiring a connection: %w", ident.Show(name), err)
	}
	if err := checkServer(conn.Conn().PgConn()); err != nil {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

// runSessionStatement runs the lock statement, creating the fence table
// first if the statement needs it and it does not exist.
func runSessionStatement(ctx context.Context, conn *pgxpool.Conn, r *request) lockResult {
	pc := conn.Conn().PgConn()
	var res lockResult
	var timeout time.Duration
	timeout, res.byDeadline = waitBound(ctx, r.o.LockTimeout, r.try)
	sql, args := sessionStatement(r, pc.PID(), timeout)
	run := func() {
		res.cancelSent, res.err = interruptible(ctx, pc, func(qctx context.Context) error {
			return conn.QueryRow(qctx, sql, args...).Scan(&res.pid, &res.locked, &res.token)
		})
	}
	run()
	if r.o.Fence && !res.cancelSent && retry.SQLState(res.err) == pgerrcode.UndefinedTable {
		// The statement failed at parse time, before locking anything.
		if res.err = CreateFenceTable(ctx, conn); res.err == nil {
			run()
		}
	}
	return res
}

// settleSession turns a lock statement that succeeded into a held lock, or
// into the error that says why it holds none.
func settleSession(ctx context.Context, conn *pgxpool.Conn, r *request, res lockResult) (*held, error) {
	switch {
	case res.cancelSent:
		// The statement finished (the lock perhaps granted) as ctx ended,
		// and the cancel request may still reach the session (see
		// interruptible): the connection cannot be trusted with anyone's
		// next statement. Closing it also drops the lock if it was taken.
		discard(conn)
		return nil, fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), context.Cause(ctx))
	case res.locked == nil:
		startupPID := conn.Conn().PgConn().PID()
		conn.Release()
		return nil, &poolerError{name: r.name, startupPID: startupPID, serverBackend: res.pid}
	case !*res.locked:
		holders := lookupHolders(ctx, conn, r.k)
		conn.Release()
		return nil, &NotAcquiredError{Name: r.name, Waited: time.Since(r.start), Holders: holders}
	}
	h := &held{name: r.name, k: r.k, shared: r.o.Shared, conn: conn, pid: res.pid, acquired: time.Now(),
		obs: r.o.Observer, interval: r.o.interval(), timeout: r.o.checkTimeout()}
	if res.token != nil {
		h.token = *res.token
	}
	return h, nil
}

// failedLock cleans up after a lock statement that returned an error and
// says why the lock was not taken.
func failedLock(ctx context.Context, conn *pgxpool.Conn, r *request, res lockResult) error {
	ctxDone := ctx.Err() != nil
	timedOut := waitTimedOut(ctx, res.err, res.byDeadline)
	var holders []Holder
	if timedOut && !conn.Conn().IsClosed() {
		holders = lookupHolders(ctx, conn, r.k)
	}
	putBack(ctx, conn, r, res)
	switch {
	case timedOut:
		return notAcquired(r, res.err, res.byDeadline, holders)
	case ctxDone:
		return fmt.Errorf("advisory: waiting for lock %s: %w", ident.Show(r.name), context.Cause(ctx))
	}
	return fmt.Errorf("advisory: lock %s: %w", ident.Show(r.name), res.err)
}

// putBack returns the connection of a failed lock statement to the pool if
// it is known clean, and closes it otherwise.
func putBack(ctx context.Context, conn *pgxpool.Conn, r *request, res lockResult) {
	switch {
	case conn.Conn().IsClosed():
		discard(conn)
	case res.cancelSent && retry.SQLState(res.err) != pgerrcode.QueryCanceled:
		// The cancel request was not what ended the statement, so its
		// signal may still be pending: see interruptible.
		discard(conn)
	case cleanLock(ctx, conn, r.k, r.o.Shared):
		// The lock may have been granted just before the statement failed
		// (a cancel or timeout arriving right after the grant, or a
		// failure in the fencing write): cleanLock released it if this
		// session held it, so the connection goes back clean.
		conn.Release()
	default:
		discard(conn)
	}
}

// waitTimedOut reports whether a lock statement's err means its wait timed
// out: the server's lock_timeout fired, or ctx's deadline passed while the
// lock_timeout came from it (byDeadline).
func waitTimedOut(ctx context.Context, err error, byDeadline bool) bool {
	if retry.SQLState(err) == pgerrcode.LockNotAvailable {
		return true
	}
	ctxErr := ctx.Err()
	return ctxErr != nil && byDeadline && errors.Is(ctxErr, context.DeadlineExceeded)
}

// notAcquired is the error of a wait that timed out.
func notAcquired(r *request, err error, byDeadline bool, holders []Holder) error {
	cause := err
	if byDeadline {
		// The ctx deadline set the server's lock_timeout, whichever of
		// the two fired first.
		cause = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return &NotAcquiredError{Name: r.name, Waited: time.Since(r.start), Holders: holders, Err: cause}
}

// waitBound is the lock_timeout to set: Options.LockTimeout or the time
// left before ctx's deadline, whichever is shorter; byDeadline says it came
// from the deadline. A try does not wait. LockTimeout is never
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
