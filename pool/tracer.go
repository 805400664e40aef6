package pool

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/purpose"
)

// tracker is the pgxpool AcquireTracer and ReleaseTracer behind the acquire
// timeout and the record of who holds which connection. Because it works
// inside pgxpool's own Acquire, it covers every path that takes a
// connection, including code handed the *pgxpool.Pool itself.
type tracker struct {
	timeout time.Duration // <= 0: no acquire timeout
	stacks  bool
	log     *slog.Logger

	closed  atomic.Bool
	waiting atomic.Int64
	gate    connectGate
	dog     *watchdog

	mu      sync.Mutex
	held    map[*pgx.Conn]*holder
	changed chan struct{} // a connection came back; capacity 1
}

func newTracker(timeout time.Duration, stacks bool, log *slog.Logger) *tracker {
	t := &tracker{
		timeout: timeout,
		stacks:  stacks,
		log:     log,
		held:    make(map[*pgx.Conn]*holder),
		changed: make(chan struct{}, 1),
	}
	t.dog = newWatchdog(timeout)
	return t
}

// holder is one acquired connection.
type holder struct {
	conn     *pgx.Conn
	since    time.Duration // monotonic, see clock
	pcs      []uintptr     // the stack that acquired it, when captured
	label    string
	reported bool // guarded by tracker.mu
}

// stackedHolder lets a holder and its stack be one allocation.
type stackedHolder struct {
	holder
	stack stack
}

// stack is a captured stack, kept as program counters: it is symbolized
// only when a report is made.
type stack struct {
	n   int
	pcs [stackDepth]uintptr
}

func (s *stack) frames() []uintptr { return s.pcs[:s.n] }

// stackDepth is how many frames a captured stack keeps.
const stackDepth = 20

// errAcquireTimeout is the cancel cause of an acquire's own deadline, and
// errClosing that of an acquire still waiting when Close ends.
var (
	errAcquireTimeout = errors.New("acquire timeout")
	errClosing        = errors.New("pool closing")
)

type stateKey struct{}

// acquireState is the ctx pgxpool uses for the rest of one Acquire. Its
// Err says why the acquire stopped in txkit's terms, so the error pgxpool
// returns is a *TimeoutError or ErrClosed rather than a bare ctx error.
//
// It is its own cancellable ctx rather than a context.WithCancelCause
// child: that costs two more allocations per acquire, and the parent is
// only watched when it can end (context.AfterFunc).
type acquireState struct {
	parent     context.Context
	stopParent func() bool // undoes the watch of parent; nil if none
	timeout    time.Duration
	closed     bool
	stack      *stack
	label      string
	claim      claim
	preHeld    bool // guarded by connectGate.mu: its new connection is counted held
	exited     bool // guarded by connectGate.mu

	mu    sync.Mutex
	done  chan struct{} // made on first use
	err   error         // the ctx error once stopped
	cause error         // why: errAcquireTimeout, errClosing or the parent's cause
	te    *TimeoutError // guarded by mu

	// The watchdog's list; guarded by watchdog.mu.
	prev, next *acquireState
	watched    bool
	scans      int64
}

// closedChan is the Done of an acquire stopped before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (s *acquireState) Deadline() (time.Time, bool) { return s.parent.Deadline() }

func (s *acquireState) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		if s.err != nil {
			s.done = closedChan
		} else {
			s.done = make(chan struct{})
		}
	}
	return s.done
}

func (s *acquireState) Value(key any) any {
	if key == (stateKey{}) {
		return s
	}
	return s.parent.Value(key)
}

func (s *acquireState) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err == nil:
		return nil
	case s.closed || errors.Is(s.cause, errClosing):
		return ErrClosed
	case errors.Is(s.cause, errAcquireTimeout):
		if s.te == nil {
			s.te = &TimeoutError{Waited: s.timeout}
		}
		return s.te
	}
	return s.err
}

// stop ends the acquire's ctx with err for cause; the first stop wins.
func (s *acquireState) stop(err, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err, s.cause = err, cause
	if s.done == nil {
		s.done = closedChan
	} else {
		close(s.done)
	}
}

// timeoutError is the *TimeoutError Err returned, if any.
func (s *acquireState) timeoutError() *TimeoutError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.te
}

func (t *tracker) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	t.waiting.Add(1)
	s := &acquireState{parent: ctx, timeout: t.timeout}
	s.label, _ = purpose.Label(ctx)
	if t.closed.Load() {
		s.closed = true
		s.stop(context.Canceled, errClosing)
	} else {
		if ctx.Done() != nil {
			s.stopParent = context.AfterFunc(ctx, func() { s.stop(ctx.Err(), context.Cause(ctx)) })
		}
		// No timer of its own: the watchdog stops it when the acquire
		// timeout passes, or when Close ends (see watchdog).
		if !t.dog.add(s) {
			s.stop(context.Canceled, errClosing) // Close has ended
		}
		s.claim = t.gate.enter(s)
	}
	if t.stacks {
		// Skip runtime.Callers, this method, multitracer's and pgxpool's
		// Acquire: the first frame kept is the code that asked for the
		// connection. The depth is bounded because the walk is the cost.
		s.stack = stackPool.Get().(*stack)
		s.stack.n = runtime.Callers(4, s.stack.pcs[:])
	}
	return s
}

func (t *tracker) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	waiting := t.waiting.Add(-1) + 1
	s, _ := ctx.Value(stateKey{}).(*acquireState)
	if s == nil {
		return
	}
	if !s.closed {
		t.dog.remove(s)
		if s.stopParent != nil {
			s.stopParent()
		}
	}
	t.gate.exit(s, data.Err == nil && data.Conn != nil)
	if data.Err != nil || data.Conn == nil {
		s.putStack()
	}
	if data.Err != nil {
		var te *TimeoutError
		if errors.As(data.Err, &te) && te == s.timeoutError() {
			st := pool.Stat()
			te.Max, te.Total, te.Acquired, te.Idle, te.Waiting = st.MaxConns(), st.TotalConns(), st.AcquiredConns(), st.IdleConns(), waiting
			t.log.LogAttrs(ctx, slog.LevelWarn, "pool: acquire timed out",
				slog.Duration("timeout", te.Waited), slog.Int("max", int(te.Max)), slog.Int("total", int(te.Total)),
				slog.Int("acquired", int(te.Acquired)), slog.Int("idle", int(te.Idle)), slog.Int64("waiting", te.Waiting))
		}
		return
	}
	if data.Conn == nil {
		return
	}
	var h *holder
	if s.stack != nil {
		sh := &stackedHolder{stack: *s.stack}
		s.putStack()
		h = &sh.holder
		h.pcs = sh.stack.frames()
	} else {
		h = &holder{}
	}
	h.conn, h.since, h.label = data.Conn, clock(), s.label
	t.mu.Lock()
	t.held[data.Conn] = h
	t.mu.Unlock()
}

func (t *tracker) TraceRelease(_ *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	t.mu.Lock()
	h := t.held[data.Conn]
	delete(t.held, data.Conn)
	t.mu.Unlock()
	if h == nil {
		return
	}
	t.gate.released()
	select {
	case t.changed <- struct{}{}:
	default:
	}
	if h.reported {
		// reported is only written under mu before this delete, so it
		// is settled now.
		t.log.LogAttrs(context.Background(), slog.LevelWarn, "pool: leaked connection returned",
			slog.Duration("held", clock()-h.since), slog.Uint64("pid", uint64(h.conn.PgConn().PID())))
	}
}

// heldCount is the number of connections acquired and not yet released,
// leaving out hijacked ones that their owner has closed.
func (t *tracker) heldCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for c := range t.held {
		if !gone(c) {
			n++
		}
	}
	return n
}

// Holder describes a connection that is acquired: for how long, which
// server process it is, its label (see [HeldOnPurpose]) and, with
// [Options.CaptureStacks], the stack that acquired it.
type Holder struct {
	Held  time.Duration
	PID   uint32
	Label string
	Stack string
}

func (h Holder) String() string {
	s := "pid " + itoa(int64(h.PID)) + " held " + h.Held.Round(time.Millisecond).String()
	if h.Label != "" {
		s += " (" + h.Label + ")"
	}
	if h.Stack != "" {
		s += " acquired at:\n" + h.Stack
	}
	return s
}

func (h *holder) describe(now time.Duration) Holder {
	return Holder{Held: now - h.since, PID: h.conn.PgConn().PID(), Label: h.label, Stack: formatStack(h.pcs)}
}

// holders lists the connections held now, oldest first.
func (t *tracker) holders() []Holder {
	now := clock()
	t.mu.Lock()
	list := make([]*holder, 0, len(t.held))
	for c, h := range t.held {
		if !gone(c) {
			list = append(list, h)
		}
	}
	t.mu.Unlock()
	sortHolders(list)
	out := make([]Holder, len(list))
	for i, h := range list {
		out[i] = h.describe(now)
	}
	return out
}

// HeldOnPurpose returns a ctx whose acquisitions are held on purpose: a
// session advisory lock, a leader's campaign. Connections acquired with it
// are never reported as leaks; a [Pool.Close] that finds them still held
// names them by label.
func HeldOnPurpose(ctx context.Context, label string) context.Context {
	return purpose.Mark(ctx, label)
}

// gone reports whether c has been closed and cleaned up. Unlike IsClosed it
// is safe to call while another goroutine uses c.
func gone(c *pgx.Conn) bool {
	select {
	case <-c.PgConn().CleanupDone():
		return true
	default:
		return false
	}
}

// stackPool holds the arrays stacks are captured into before the acquire
// is known to have succeeded.
var stackPool = sync.Pool{New: func() any { return new(stack) }}

func (s *acquireState) putStack() {
	if s.stack != nil {
		stackPool.Put(s.stack)
		s.stack = nil
	}
}

// epoch is the origin of clock.
var epoch = time.Now()

// clock is the time since epoch on the monotonic clock: cheaper than
// time.Now, which also reads the wall clock, and all a held time needs.
func clock() time.Duration { return time.Since(epoch) }
