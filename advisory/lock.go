package advisory

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/ident"
)

// Lock is a held session lock. It owns one pool connection, which a
// watcher goroutine checks every [Options.CheckInterval], until Release. The
// methods are safe for concurrent use.
//
// A Lock that becomes unreachable without Release is a bug: the garbage
// collector's cleanup reports it to the Observer as a leak and releases
// it. Keep the Lock reachable for as long as the work it protects runs,
// which `defer l.Release(ctx)` does.
type Lock struct {
	h       *held
	cleanup runtime.Cleanup
}

// held is the state of a Lock. The watcher goroutine and the leak cleanup
// refer to held and never to the Lock, so that an abandoned Lock can be
// collected and reported.
type held struct {
	name     string
	k        key
	shared   bool
	conn     *pgxpool.Conn
	pid      int64 // the backend holding the lock
	token    int64
	acquired time.Time
	obs      Observer
	interval time.Duration
	timeout  time.Duration // for one check
	callers  []uintptr     // where the lock was acquired, when observed

	lost        chan struct{} // closed on loss
	stop        chan struct{} // closed by release to stop the watcher
	watcherDone chan struct{}

	mu       sync.Mutex // guards the fields below and the use of conn
	state    lockState
	lostErr  error
	onLost   map[int]func(error)
	nextHook int
}

type lockState int

const (
	stateHeld lockState = iota
	stateLost
	stateReleased
)

func newLock(h *held) *Lock {
	h.lost = make(chan struct{})
	h.stop = make(chan struct{})
	h.watcherDone = make(chan struct{})
	go h.watch()
	l := &Lock{h: h}
	l.cleanup = runtime.AddCleanup(l, func(h *held) { go h.leaked() }, h)
	return l
}

// Name is the name the lock was acquired under.
func (l *Lock) Name() string { return l.h.name }

// Token is the fencing token taken with this acquisition when the [Options.Fence]
// option was given (always with [Lead]); 0 otherwise. Tokens for a key only
// grow: a later acquisition always has a larger token. Store it with the
// writes the lock protects and refuse writes that carry a smaller token
// than the one stored (see the package documentation).
func (l *Lock) Token() int64 { return l.h.token }

// PID is the process id of the server backend that holds the lock, as
// pg_locks and pg_stat_activity show it.
func (l *Lock) PID() uint32 { return uint32(l.h.pid) }

// Lost returns a channel that is closed if the lock is lost: its
// connection died or was closed, or (with [Options.SkipPoolerCheck]) it reached a
// different server session. A connection that breaks is seen lost
// within about one [Options.CheckInterval]; one that stops answering, when a check
// has then waited an interval (at least a second) for its answer. The
// channel is not closed by Release.
func (l *Lock) Lost() <-chan struct{} { return l.h.lost }

// Err returns the error describing the loss, matching [ErrLockLost], once
// Lost is closed; nil before that.
func (l *Lock) Err() error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.lostErr
}

// Release unlocks the lock and returns its connection to the pool, clean.
// If the unlock cannot be sent because ctx is done, fails, or the server
// says the lock was not held, the connection is closed instead of being
// returned, which releases everything it held: a pool connection is never
// handed back still holding the lock.
//
// Release returns nil when the lock was released, including by closing the
// connection because ctx was done; the server then drops the lock when its
// backend notices the closed connection, a moment after Release returns. It returns an error matching
// [ErrLockLost] when the lock turns out to have been lost before Release
// (the connection was dead, or the server did not hold the lock), because
// the work it protected may have overlapped with another holder's. Calling
// Release again does nothing and returns nil.
func (l *Lock) Release(ctx context.Context) error {
	l.cleanup.Stop()
	return l.h.release(ctx)
}

// addOnLost registers f to run (once, on the watcher goroutine) if the lock
// is lost; it runs at once if the lock is already lost. The returned func
// unregisters f.
func (h *held) addOnLost(f func(error)) (remove func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == stateLost {
		f(h.lostErr)
		return func() {}
	}
	if h.onLost == nil {
		h.onLost = make(map[int]func(error))
	}
	id := h.nextHook
	h.nextHook++
	h.onLost[id] = f
	return func() {
		h.mu.Lock()
		delete(h.onLost, id)
		h.mu.Unlock()
	}
}

// watch checks the connection every interval until the lock is released or
// lost. Between checks the connection is idle and nothing else may use it.
func (h *held) watch() {
	defer close(h.watcherDone)
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if !h.check() {
			return
		}
	}
}

// check asks the server which backend serves the connection. An error
// means the connection is dead or unresponsive; a different pid means a
// pooler moved the session to another server connection (possible only
// with SkipPoolerCheck). Either way the lock can no longer be vouched for.
func (h *held) check() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateHeld {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	var pid int64
	err := h.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
	if err == nil && pid == h.pid {
		return true
	}
	if err == nil {
		err = fmt.Errorf("the connection now reaches backend %d instead of backend %d, which held the lock: a pooler moved the session", pid, h.pid)
	}
	h.loseLocked(err)
	return false
}

// loseLocked records a loss, with h.mu held: the connection is closed (it
// may be alive, talking to another backend), Lost is closed and the loss
// hooks run.
func (h *held) loseLocked(cause error) {
	held := time.Since(h.acquired)
	err := &LostError{Name: h.name, Held: held, Err: cause}
	h.state = stateLost
	h.lostErr = err
	discard(h.conn)
	// Reported first, so that whoever sees Lost closed can count on the
	// event having been delivered.
	if o, ok := h.obs.(LockLostObserver); ok {
		o.LockLost(LockLostData{Name: h.name, Held: held, Err: err})
	}
	close(h.lost)
	for _, f := range h.onLost {
		f(err)
	}
	h.onLost = nil
}

func (h *held) release(ctx context.Context) error {
	h.mu.Lock()
	switch h.state {
	case stateReleased:
		h.mu.Unlock()
		return nil
	case stateLost:
		h.state = stateReleased
		err := h.lostErr
		h.mu.Unlock()
		<-h.watcherDone
		return err
	}
	h.state = stateReleased
	h.onLost = nil
	close(h.stop)
	h.mu.Unlock()
	<-h.watcherDone

	d := LockReleasedData{Name: h.name, Held: time.Since(h.acquired)}
	d.Discarded, d.Err = h.unlock(ctx)
	if o, ok := h.obs.(LockReleasedObserver); ok {
		o.LockReleased(ctx, d)
	}
	return d.Err
}

// unlock sends the unlock and hands the connection back, or closes it if
// the unlock was not confirmed.
func (h *held) unlock(ctx context.Context) (discarded bool, err error) {
	if ctx.Err() != nil {
		// Nothing can be sent with this ctx; closing the connection ends
		// the session and with it the lock.
		discard(h.conn)
		return true, nil //nolint:nilerr // a done ctx is no failure of Release: closing released the lock
	}
	sql, args := unlockStatement(h.k, h.shared)
	var ok bool
	err = h.conn.QueryRow(ctx, sql, args...).Scan(&ok)
	switch {
	case err == nil && ok:
		h.conn.Release()
		return false, nil
	case err == nil:
		discard(h.conn)
		return true, &LostError{Name: h.name, Held: time.Since(h.acquired), Err: fmt.Errorf("the server says session %d did not hold the lock when it was released", h.pid)}
	case ctx.Err() != nil:
		discard(h.conn)
		return true, nil //nolint:nilerr // the unlock was cut short by ctx; closing released the lock
	}
	dead := h.conn.Conn().IsClosed()
	discard(h.conn)
	if dead {
		return true, &LostError{Name: h.name, Held: time.Since(h.acquired), Err: fmt.Errorf("the connection was found dead at release: %w", err)}
	}
	return true, fmt.Errorf("advisory: unlocking %s failed, so its connection was closed, which releases the lock: %w", ident.Show(h.name), err)
}

// leaked runs when the Lock was garbage collected without Release: it
// releases the lock, so that neither the lock nor the pool connection stay
// taken forever, and reports the leak.
func (h *held) leaked() {
	h.mu.Lock()
	st := h.state
	h.mu.Unlock()
	if st != stateHeld {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	heldFor := time.Since(h.acquired)
	_ = h.release(ctx)
	if o, ok := h.obs.(LockLeakObserver); ok {
		o.LockLeak(LockLeakData{Name: h.name, Held: heldFor, Stack: formatCallers(h.callers)})
	}
}

// discardTimeout bounds closing a connection that is being thrown away.
const discardTimeout = 2 * time.Second

// discard takes the connection out of the pool and closes it, so that it
// is never handed out again (pgxpool keeps a released connection unless it
// is closed, busy or in a transaction). Closing the connection ends its
// server session and with it every lock the session held.
func discard(c *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), discardTimeout)
	defer cancel()
	_ = c.Hijack().Close(ctx)
}

func captureCallers(skip int) []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(skip+1, pcs)]
}

func formatCallers(pcs []uintptr) []byte {
	if len(pcs) == 0 {
		return nil
	}
	var b bytes.Buffer
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return b.Bytes()
}
