package txn

import (
	"context"
	"time"

	"github.com/txkit/txkit/isolation"
)

// Observer receives events about the transactions WithTx runs, in the style
// of pgx's tracers: plain data structs, no dependencies. Methods are called
// on the goroutine running WithTx (TxLeak from a timer goroutine), must be
// quick, must not use the transaction, and must be safe for concurrent use.
// Embed [NopObserver] to implement only the events you need.
//
// Events never carry a connection string or password. An error from
// failing to connect is carried as pgx gives it: pgx's ConnectError names
// the user, database, host and port it tried, never the password.
type Observer interface {
	// TxStart is called once per WithTx call, before the first attempt.
	// The returned ctx is passed to the later events of the same call and
	// to fn. A nested call (Nested set) reports TxStart and TxEnd only, to
	// its own Observer or else the outermost call's.
	TxStart(ctx context.Context, d TxStartData) context.Context
	// TxRetry is called when an attempt failed and will be retried.
	TxRetry(ctx context.Context, d TxRetryData)
	// TxAttemptEnd is called when an attempt committed or rolled back.
	TxAttemptEnd(ctx context.Context, d TxAttemptEndData)
	// TxEnd is called once when the WithTx call returns.
	TxEnd(ctx context.Context, d TxEndData)
	// CommitResolved is called when COMMIT's answer was lost and its
	// outcome was asked of the server on another connection.
	CommitResolved(ctx context.Context, d CommitResolvedData)
	// TxLeak is called when a transaction is still open after
	// Options.LeakThreshold.
	TxLeak(d TxLeakData)
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

// NopObserver ignores every event. Embed it to implement part of Observer.
type NopObserver struct{}

func (NopObserver) TxStart(ctx context.Context, _ TxStartData) context.Context { return ctx }
func (NopObserver) TxRetry(context.Context, TxRetryData)                       {}
func (NopObserver) TxAttemptEnd(context.Context, TxAttemptEndData)             {}
func (NopObserver) TxEnd(context.Context, TxEndData)                           {}
func (NopObserver) CommitResolved(context.Context, CommitResolvedData)         {}
func (NopObserver) TxLeak(TxLeakData)                                          {}
func (NopObserver) CallbackPanic(context.Context, CallbackPanicData)           {}
