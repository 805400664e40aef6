package advisory

import (
	"context"
	"time"
)

// Observer receives events about advisory locks, in the style of pgx's
// tracers and of txn.Observer: plain data structs, no dependencies. Methods
// must be quick, must not use the lock's connection, and must be safe for
// concurrent use. AcquireStart, AcquireEnd, LockReleased, LeaderStart and
// LeaderEnd are called on the caller's goroutine; LockLost from the lock's
// watcher goroutine and LockLeak from a goroutine started by the garbage
// collector's cleanup. Embed [NopObserver] to implement only some events.
//
// Events never carry a connection string or password.
type Observer interface {
	// AcquireStart is called when a lock call begins: Acquire, TryAcquire,
	// LockTx, TryLockTx, or a campaign of Lead. The returned ctx is passed
	// to AcquireEnd.
	AcquireStart(ctx context.Context, d AcquireStartData) context.Context
	// AcquireEnd is called when the call returns, with or without the lock.
	AcquireEnd(ctx context.Context, d AcquireEndData)
	// LockReleased is called when a session lock is released.
	LockReleased(ctx context.Context, d ReleasedData)
	// LockLost is called once when a held session lock is found lost,
	// just before Lock.Lost is closed.
	LockLost(d LostData)
	// LockLeak is called when a session lock was garbage collected without
	// Release. The lock has been released by then.
	LockLeak(d LeakData)
	// LeaderStart is called when Lead won a campaign, before fn runs.
	LeaderStart(ctx context.Context, d LeaderStartData)
	// LeaderEnd is called when fn returned after LeaderStart and the lock
	// was released.
	LeaderEnd(ctx context.Context, d LeaderEndData)
}

// Kind says which sort of lock call an event is about.
type Kind int

// Kinds of lock call.
const (
	SessionLock Kind = iota // Acquire, TryAcquire, WithLock, Lead
	TxLock                  // LockTx, TryLockTx
)

func (k Kind) String() string {
	switch k {
	case SessionLock:
		return "session"
	case TxLock:
		return "transaction"
	}
	return "unknown kind"
}

// AcquireStartData describes a lock call about to start.
type AcquireStartData struct {
	Name      string
	Namespace string // "" for the bigint key form
	Kind      Kind
	Shared    bool
	Try       bool // the call does not wait
}

// AcquireEndData describes how a lock call ended.
type AcquireEndData struct {
	Name      string
	Namespace string
	Kind      Kind
	Shared    bool
	Try       bool
	Acquired  bool
	// Wait is the time from the call's start until it returned: for a
	// session lock this includes waiting for a pool connection.
	Wait  time.Duration
	Token int64  // the fencing token, with Fence
	PID   uint32 // the server backend holding the lock, for a session lock
	Err   error  // nil when Acquired; matches ErrNotAcquired when held by another
}

// ReleasedData describes the release of a session lock.
type ReleasedData struct {
	Name string
	Held time.Duration
	// Discarded is true when the connection was closed rather than
	// returned to the pool: the unlock failed, was not confirmed, or could
	// not be sent because ctx was done. Closing the connection releases
	// every lock it held.
	Discarded bool
	Err       error
}

// LostData describes a lock found lost.
type LostData struct {
	Name string
	Held time.Duration // until the loss was seen
	Err  error         // matches ErrLockLost
}

// LeakData describes a lock garbage collected without Release.
type LeakData struct {
	Name  string
	Held  time.Duration
	Stack []byte // where the lock was acquired; nil if no Observer was set then
}

// LeaderStartData describes a won campaign.
type LeaderStartData struct {
	Name string
	Term int64 // the fencing token of this leadership
}

// LeaderEndData describes the end of a leadership.
type LeaderEndData struct {
	Name string
	Term int64
	Held time.Duration
	Lost bool  // leadership ended because the lock was lost
	Err  error // what fn returned
}

// NopObserver ignores every event. Embed it to implement part of Observer.
type NopObserver struct{}

func (NopObserver) AcquireStart(ctx context.Context, _ AcquireStartData) context.Context { return ctx }
func (NopObserver) AcquireEnd(context.Context, AcquireEndData)                           {}
func (NopObserver) LockReleased(context.Context, ReleasedData)                           {}
func (NopObserver) LockLost(LostData)                                                    {}
func (NopObserver) LockLeak(LeakData)                                                    {}
func (NopObserver) LeaderStart(context.Context, LeaderStartData)                         {}
func (NopObserver) LeaderEnd(context.Context, LeaderEndData)                             {}
