package advisory

import (
	"context"
	"time"
)

// Observer is what [Options.Observer] holds: any value that implements one
// or more of the event interfaces below ([AcquireStartObserver],
// [AcquireEndObserver], [LockReleasedObserver], [LockLostObserver],
// [LockLeakObserver], [LeaderStartObserver], [LeaderEndObserver]). It
// follows the convention of txn.Observer, described in the txkit package
// documentation: each event X has an interface XObserver with one method X
// taking XData, found by type assertion, so that a new event breaks no
// existing observer. A value that implements none of them receives
// nothing; write
//
//	var _ advisory.LockLostObserver = (*myObserver)(nil)
//
// to have the compiler check the methods you meant to implement.
//
// Methods must be quick, must not use the lock's connection, and must be
// safe for concurrent use. AcquireStart, AcquireEnd, LockReleased,
// LeaderStart and LeaderEnd are called on the caller's goroutine; LockLost
// from the lock's watcher goroutine and LockLeak from a goroutine started
// by the garbage collector's cleanup.
//
// Events never carry a connection string or password.
//
// A value that implements none of the event interfaces is refused with
// ErrInvalid: it would never be called.
type Observer any

// AcquireStartObserver receives the start of every lock call.
type AcquireStartObserver interface {
	// AcquireStart is called when a lock call begins: Acquire, TryAcquire,
	// LockTx, TryLockTx, or a campaign of Lead. The returned ctx is passed
	// to AcquireEnd.
	AcquireStart(ctx context.Context, d AcquireStartData) context.Context
}

// AcquireEndObserver receives how every lock call ended.
type AcquireEndObserver interface {
	// AcquireEnd is called when the call returns, with or without the lock.
	AcquireEnd(ctx context.Context, d AcquireEndData)
}

// LockReleasedObserver receives the release of session locks.
type LockReleasedObserver interface {
	// LockReleased is called when a session lock is released.
	LockReleased(ctx context.Context, d LockReleasedData)
}

// LockLostObserver receives session locks found lost.
type LockLostObserver interface {
	// LockLost is called once when a held session lock is found lost,
	// just before Lock.Lost is closed.
	LockLost(d LockLostData)
}

// LockLeakObserver receives session locks garbage collected without
// Release. The stack that acquired a lock is captured only when the
// lock's Observer is a LockLeakObserver.
type LockLeakObserver interface {
	// LockLeak is called when a session lock was garbage collected without
	// Release. The lock has been released by then.
	LockLeak(d LockLeakData)
}

// LeaderStartObserver receives the campaigns Lead won.
type LeaderStartObserver interface {
	// LeaderStart is called when Lead won a campaign, before fn runs.
	LeaderStart(ctx context.Context, d LeaderStartData)
}

// LeaderEndObserver receives the end of every leadership.
type LeaderEndObserver interface {
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

// LockReleasedData describes the release of a session lock.
type LockReleasedData struct {
	Name string
	Held time.Duration
	// Discarded is true when the connection was closed rather than
	// returned to the pool: the unlock failed, was not confirmed, or could
	// not be sent because ctx was done. Closing the connection releases
	// every lock it held.
	Discarded bool
	Err       error
}

// LockLostData describes a lock found lost.
type LockLostData struct {
	Name string
	Held time.Duration // until the loss was seen
	Err  error         // matches ErrLockLost
}

// LockLeakData describes a lock garbage collected without Release.
type LockLeakData struct {
	Name  string
	Held  time.Duration
	Stack []byte // where the lock was acquired; nil if no LockLeakObserver was set then
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

// NopObserver implements every event interface and ignores every event.
// An observer no longer needs it: implement only the events you want.
// Code that embeds it keeps working.
type NopObserver struct{}

// Every event interface, so that the compiler checks NopObserver and the
// slog observer implement them all.
type allObserver interface {
	AcquireStartObserver
	AcquireEndObserver
	LockReleasedObserver
	LockLostObserver
	LockLeakObserver
	LeaderStartObserver
	LeaderEndObserver
}

var (
	_ allObserver = NopObserver{}
	_ allObserver = slogObserver{}
)

func (NopObserver) AcquireStart(ctx context.Context, _ AcquireStartData) context.Context { return ctx }
func (NopObserver) AcquireEnd(context.Context, AcquireEndData)                           {}
func (NopObserver) LockReleased(context.Context, LockReleasedData)                       {}
func (NopObserver) LockLost(LockLostData)                                                {}
func (NopObserver) LockLeak(LockLeakData)                                                {}
func (NopObserver) LeaderStart(context.Context, LeaderStartData)                         {}
func (NopObserver) LeaderEnd(context.Context, LeaderEndData)                             {}
