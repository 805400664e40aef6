package advisory

import (
	"fmt"
	"time"

	"github.com/txkit/txkit/internal/pgtimeout"
)

// Option changes how a lock is taken or held. Options that do not apply to
// a call are ignored: the same options can be passed to Acquire, LockTx and
// Lead.
type Option func(*options)

// DefaultCheckInterval is how often a held session lock checks its
// connection unless [CheckInterval] says otherwise.
const DefaultCheckInterval = time.Second

// MinCheckInterval is the shortest [CheckInterval] accepted. Each check is
// a round trip on the lock's connection; shorter intervals would keep the
// connection and the server busy checking, and usually mean a unit was
// lost (CheckInterval(1) is one nanosecond, not one second).
const MinCheckInterval = 10 * time.Millisecond

type options struct {
	shared     bool
	namespace  string
	timeout    time.Duration
	interval   time.Duration
	fence      bool
	skipPooler bool
	observer   Observer
	problems   []string
}

// Shared takes the lock in shared mode: any number of shared holders at
// once, excluding exclusive holders (readers and writers). Without it locks
// are exclusive. Fencing needs an exclusive lock.
func Shared() Option { return func(o *options) { o.shared = true } }

// Namespace puts the lock in namespace, using the two-int32 key form (see
// [PairKey]) instead of the bigint form. A namespace must be non-empty
// valid UTF-8.
func Namespace(namespace string) Option {
	return func(o *options) {
		if err := checkName("namespace", namespace); err != nil {
			o.problems = append(o.problems, err.Error())
		}
		o.namespace = namespace
	}
}

// Timeout bounds the wait for the lock: the server stops waiting after d
// (lock_timeout, set for the lock statement only) and the call returns an
// error matching [ErrNotAcquired] that says who holds the lock. A ctx
// deadline bounds the wait the same way, and so does a lock_timeout the
// session or transaction already has (it is never lengthened): the
// earliest bound applies. Zero means no bound of its own. Time spent
// waiting for a pool connection counts against ctx only.
//
// PostgreSQL's lock_timeout holds at most 2147483647 ms (about 24.8 days).
// A negative d or one longer than that is refused with [ErrInvalidOptions];
// a ctx deadline further away than that bounds nothing the server can
// hold, so it sets no lock_timeout and the wait is bounded only by ctx.
func Timeout(d time.Duration) Option {
	return func(o *options) {
		if err := pgtimeout.Check("Timeout", d); err != nil {
			o.problems = append(o.problems, err.Error())
		}
		o.timeout = d
	}
}

// CheckInterval sets how often a held session lock checks that its
// connection is alive and still the same server session (one round trip
// each time, SELECT pg_backend_pid()). A dead connection is seen within
// about one interval; a check that gets no answer within the interval (at
// least a second) counts as a loss. The default is [DefaultCheckInterval];
// an interval below [MinCheckInterval] is refused with [ErrInvalidOptions].
func CheckInterval(d time.Duration) Option {
	return func(o *options) {
		switch {
		case d <= 0:
			o.problems = append(o.problems, fmt.Sprintf("CheckInterval must be positive (got %v)", d))
		case d < MinCheckInterval:
			o.problems = append(o.problems, fmt.Sprintf("CheckInterval is %v, below the minimum of %v", d, MinCheckInterval))
		}
		o.interval = d
	}
}

// Fence makes each acquisition of a session lock take the next fencing
// token for its key (see [Lock.Token] and the package documentation). It
// costs no extra round trip, but the lock statement then writes a row, so
// it commits a small write. The fence table is created on first use if it
// does not exist; see [CreateFenceTable] to create it ahead of time
// instead. [Lead] always fences.
func Fence() Option { return func(o *options) { o.fence = true } }

// SkipPoolerCheck lets session locks through a connection pooler. Use it
// only if the pooler keeps one server connection for each client
// connection for as long as the client is connected, as PgBouncer does
// with pool_mode = session; with transaction pooling a session lock is
// left behind on a server connection other clients then use. See
// [ErrPooler]. The held lock still checks, at every [CheckInterval], that
// its connection reaches the same server session, and reports a change as
// a loss.
func SkipPoolerCheck() Option { return func(o *options) { o.skipPooler = true } }

// WithObserver sends events about the lock to obs (see [Observer] and
// [NewSlogObserver]).
func WithObserver(obs Observer) Option { return func(o *options) { o.observer = obs } }

func buildOptions(opts []Option) (*options, error) {
	o := &options{interval: DefaultCheckInterval}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	if o.fence && o.shared {
		o.problems = append(o.problems, "Fence needs an exclusive lock (Shared was given): shared holders run at the same time, so a token cannot order them")
	}
	if len(o.problems) > 0 {
		return nil, &optionsError{problems: o.problems}
	}
	return o, nil
}

// checkTimeout is how long one connection check may take before the
// connection is given up as lost. A check slower than the interval would
// see a dead connection late, but on a busy machine a very short bound
// would give up healthy connections; a second is the floor.
func (o *options) checkTimeout() time.Duration {
	return max(o.interval, time.Second)
}
