package txn

import (
	"context"
	"time"

	"github.com/txkit/txkit/isolation"
)

// Observer is what [Options.Observer] holds: any value that implements one
// or more of the event interfaces below ([TxStartObserver],
// [TxRetryObserver], [TxAttemptStartObserver], [TxAttemptEndObserver], [TxEndObserver],
// [CommitResolvedObserver], [TxLeakObserver], [CallbackPanicObserver]).
// WithTx finds which ones by type assertion, as pgxpool finds
// pgxpool.AcquireTracer on a pgx.QueryTracer, and sends each event only
// to an observer that implements its interface. A new event comes with a
// new interface, so adding one breaks no existing observer. A value that
// implements none of them receives nothing; write
//
//	var _ txn.TxEndObserver = (*myObserver)(nil)
//
// to have the compiler check the methods you meant to implement.
//
// Methods are called on the goroutine running WithTx (TxLeak from a timer
// goroutine), must be quick, must not use the transaction, and must be safe
// for concurrent use.
//
// Events never carry a connection string or password. An error from
// failing to connect is carried as pgx gives it: pgx's ConnectError names
// the user, database, host and port it tried, never the password.
//
// A value that implements none of the event interfaces is refused with
// ErrInvalid: it would never be called.
type Observer any

// TxStartObserver receives the start of every WithTx call. A nested call
// (TxStartData.Nested set) reports TxStart and TxEnd only, to its own
// Observer or else the outermost call's.
type TxStartObserver interface {
	// TxStart is called once per WithTx call, before the first attempt.
	// The returned ctx is passed to the later events of the same call and
	// to fn.
	TxStart(ctx context.Context, d TxStartData) context.Context
}

// TxRetryObserver receives the attempts WithTx will retry.
type TxRetryObserver interface {
	// TxRetry is called when an attempt failed and will be retried.
	TxRetry(ctx context.Context, d TxRetryData)
}

// TxAttemptEndObserver receives the end of every attempt.
type TxAttemptEndObserver interface {
	// TxAttemptEnd is called when an attempt committed or rolled back,
	// or its BEGIN failed.
	TxAttemptEnd(ctx context.Context, d TxAttemptEndData)
}

// TxEndObserver receives the end of every WithTx call, nested ones
// included.
type TxEndObserver interface {
	// TxEnd is called once when the WithTx call returns.
	TxEnd(ctx context.Context, d TxEndData)
}

// CommitResolvedObserver receives how lost COMMIT answers were settled.
type CommitResolvedObserver interface {
	// CommitResolved is called when COMMIT's answer was lost and its
	// outcome was asked of the server on another connection.
	CommitResolved(ctx context.Context, d CommitResolvedData)
}

// TxLeakObserver receives transactions open longer than
// Options.LeakThreshold. Without one, LeakThreshold has no effect.
type TxLeakObserver interface {
	// TxLeak is called, from a timer goroutine, when a transaction is
	// still open after Options.LeakThreshold.
	TxLeak(d TxLeakData)
}

// CallbackPanicObserver receives panics in AfterCommit callbacks. Without
// one, such a panic goes on once the other callbacks ran (see
// [AfterCommit]).
type CallbackPanicObserver interface {
	// CallbackPanic is called when an AfterCommit callback panicked. The
	// commit stands; the remaining callbacks still run.
	CallbackPanic(ctx context.Context, d CallbackPanicData)
}

// TxStartData describes a transaction about to start.
type TxStartData struct {
	Name      string
	Isolation isolation.Level
	ReadOnly  bool
	Nested    bool // runs in a savepoint of the transaction in ctx
}

// TxRetryData describes a failed attempt that WithTx will retry.
type TxRetryData struct {
	Name     string
	Attempt  int           // the attempt that failed, from 1
	SQLState string        // what the server said: 40001, 40P01, ...
	Err      error         // the attempt's error
	Wait     time.Duration // backoff before the next attempt
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes of an attempt.
const (
	RolledBack    Outcome = iota // fn failed, or the server aborted the transaction
	Committed                    // COMMIT succeeded, or was confirmed afterwards
	CommitUnknown                // COMMIT's outcome could not be determined
)

func (o Outcome) String() string {
	switch o {
	case RolledBack:
		return "rolled back"
	case Committed:
		return "committed"
	case CommitUnknown:
		return "commit unknown"
	}
	return "unknown outcome"
}

// TxAttemptEndData describes one attempt's end.
type TxAttemptEndData struct {
	Name     string
	Attempt  int
	Outcome  Outcome
	Duration time.Duration // from BEGIN to the end of COMMIT or ROLLBACK
	Err      error
}

// TxEndData describes the end of a WithTx call. For a nested call,
// Attempts is 1 and Committed means its savepoint was released: its work
// commits with the outermost transaction.
type TxEndData struct {
	Name     string
	Attempts int
	Outcome  Outcome
	Duration time.Duration // of the whole call, backoff included
	Err      error
}

// CommitResolvedData reports how a lost COMMIT answer was settled.
type CommitResolvedData struct {
	Name string
	// XID is the transaction id captured before COMMIT; 0 if the server
	// had not assigned one (nothing was written) or it was not received.
	XID uint64
	// Status is what pg_xact_status said ("committed", "aborted",
	// "in progress"), or "" if it could not be asked.
	Status  string
	Outcome Outcome
	// Err says why the outcome is unknown, if it is. A read-write
	// transaction that had no transaction id, and a READ ONLY one whose
	// COMMIT could still fail, are reported with Outcome CommitUnknown and
	// XID 0 and are run again while attempts remain (see ErrCommitUnknown).
	Err error
}

// TxLeakData reports a transaction open longer than Options.LeakThreshold.
type TxLeakData struct {
	Name  string
	Open  time.Duration
	Stack []byte // where WithTx was called
}

// CallbackPanicData reports a panic in an AfterCommit callback.
type CallbackPanicData struct {
	Name  string
	Value any
	Stack []byte
}

// NopObserver implements every event interface and ignores every event.
// An observer no longer needs it: implement only the events you want.
// Code that embeds it keeps working; note that embedding it makes a type
// a [CallbackPanicObserver], so callback panics are reported (to the
// no-op, unless the type overrides it) rather than going on.
type NopObserver struct{}

// Every event interface, so that the compiler checks NopObserver and the
// slog observer implement them all.
type allObserver interface {
	TxStartObserver
	TxRetryObserver
	TxAttemptStartObserver
	TxAttemptEndObserver
	TxEndObserver
	CommitResolvedObserver
	TxLeakObserver
	CallbackPanicObserver
}

var (
	_ allObserver = NopObserver{}
	_ allObserver = slogObserver{}
)

func (NopObserver) TxStart(ctx context.Context, _ TxStartData) context.Context { return ctx }
func (NopObserver) TxRetry(context.Context, TxRetryData)                       {}
func (NopObserver) TxAttemptStart(ctx context.Context, _ TxAttemptStartData) context.Context {
	return ctx
}
func (NopObserver) TxAttemptEnd(context.Context, TxAttemptEndData)     {}
func (NopObserver) TxEnd(context.Context, TxEndData)                   {}
func (NopObserver) CommitResolved(context.Context, CommitResolvedData) {}
func (NopObserver) TxLeak(TxLeakData)                                  {}
func (NopObserver) CallbackPanic(context.Context, CallbackPanicData)   {}
