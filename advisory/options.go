package advisory

import (
	"time"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/internal/pgtimeout"
)

// Options say how a lock is taken and held. The zero value takes an
// exclusive lock in the bigint key form, waits without a bound of its own,
// checks a held session lock every [DefaultCheckInterval], does not fence,
// refuses poolers and reports to no one. Fields that do not apply to a call
// are ignored: the same Options can be passed to Acquire, LockTx and Lead.
// Options that cannot be used are refused with an error matching
// [ErrInvalid] that lists every problem.
type Options struct {
	// Shared takes the lock in shared mode: any number of shared holders
	// at once, excluding exclusive holders (readers and writers). Without
	// it locks are exclusive. Fencing needs an exclusive lock.
	Shared bool

	// Namespace puts the lock in a namespace, using the two-int32 key form
	// (see [PairKey]) instead of the bigint form. "" is the bigint form;
	// otherwise it must be valid UTF-8 without a NUL byte.
	Namespace string

	// LockTimeout bounds the wait for the lock: the server stops waiting
	// after it (lock_timeout, set for the lock statement only) and the call
	// returns an error matching [ErrNotAcquired] that says who holds the
	// lock. A ctx deadline bounds the wait the same way, and so does a
	// lock_timeout the session or transaction already has (it is never
	// lengthened): the earliest bound applies. Zero means no bound of its
	// own. Time spent waiting for a pool connection counts against ctx
	// only.
	//
	// PostgreSQL's lock_timeout holds at most 2147483647 ms (about 24.8
	// days). A negative LockTimeout or one longer than that is refused; a
	// ctx deadline further away than that bounds nothing the server can
	// hold, so it sets no lock_timeout and the wait is bounded only by
	// ctx.
	LockTimeout time.Duration

	// CheckInterval is how often a held session lock checks that its
	// connection is alive and still the same server session (one round
	// trip each time, SELECT pg_backend_pid()). A dead connection is seen
	// within about one interval; a check that gets no answer within the
	// interval (at least a second) counts as a loss. Zero means
	// [DefaultCheckInterval]; a negative interval or one below
	// [MinCheckInterval] is refused.
	CheckInterval time.Duration

	// Fence makes each acquisition of a session lock take the next fencing
	// token for its key (see [Lock.Token] and the package documentation).
	// It costs no extra round trip, but the lock statement then writes a
	// row, so it commits a small write. The fence table is created on
	// first use if it does not exist; see [CreateFenceTable] to create it
	// ahead of time instead. [Lead] always fences.
	Fence bool

	// SkipPoolerCheck lets session locks through a connection pooler. Use
	// it only if the pooler keeps one server connection for each client
	// connection for as long as the client is connected, as PgBouncer does
	// with pool_mode = session; with transaction pooling a session lock is
	// left behind on a server connection other clients then use. See
	// [ErrPooler]. The held lock still checks, at every CheckInterval, that
	// its connection reaches the same server session, and reports a change
	// as a loss.
	SkipPoolerCheck bool

	// Observer receives events about the lock (see [Observer] and
	// [NewSlogObserver]); nil sends none.
	Observer Observer
}

// DefaultCheckInterval is how often a held session lock checks its
// connection when [Options.CheckInterval] is zero.
const DefaultCheckInterval = time.Second

// MinCheckInterval is the shortest [Options.CheckInterval] accepted. Each
// check is a round trip on the lock's connection; shorter intervals would
// keep the connection and the server busy checking, and usually mean a
// unit was lost (a CheckInterval of 1 is one nanosecond, not one second).
const MinCheckInterval = 10 * time.Millisecond

// validate reports every problem with o at once.
func (o Options) validate() error {
	var p invalid.Problems
	if o.Namespace != "" {
		p.AddErr(checkName("namespace", o.Namespace))
	}
	p.AddErr(pgtimeout.Check("LockTimeout", o.LockTimeout))
	switch d := o.CheckInterval; {
	case d < 0:
		p.Add("CheckInterval must be positive, or 0 for the default (got %v)", d)
	case d > 0 && d < MinCheckInterval:
		p.Add("CheckInterval is %v, below the minimum of %v", d, MinCheckInterval)
	}
	if o.Fence && o.Shared {
		p.Add("Fence needs an exclusive lock (Shared was given): shared holders run at the same time, so a token cannot order them")
	}
	if o.Observer != nil && !observesAnything(o.Observer) {
		p.Add("Observer (%T) implements none of the event interfaces (AcquireStartObserver, AcquireEndObserver, LockReleasedObserver, LockLostObserver, LockLeakObserver, LeaderStartObserver, LeaderEndObserver): it would never be called", o.Observer)
	}
	return p.Err(ErrInvalid)
}

// observesAnything reports whether obs implements at least one event
// interface. Observer is any, so that a type may implement a single event;
// a value that implements none is a mistake (a method with the wrong
// signature, a pointer receiver on a value) that would go unnoticed.
func observesAnything(obs Observer) bool {
	switch obs.(type) {
	case AcquireStartObserver, AcquireEndObserver, LockReleasedObserver, LockLostObserver,
		LockLeakObserver, LeaderStartObserver, LeaderEndObserver:
		return true
	}
	return false
}

// interval is how often a held session lock checks its connection.
func (o Options) interval() time.Duration {
	if o.CheckInterval == 0 {
		return DefaultCheckInterval
	}
	return o.CheckInterval
}

// checkTimeout is how long one connection check may take before the
// connection is given up as lost. A check slower than the interval would
// see a dead connection late, but on a busy machine a very short bound
// would give up healthy connections; a second is the floor.
func (o Options) checkTimeout() time.Duration {
	return max(o.interval(), time.Second)
}
