package txn

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
)

// Options say how WithTx runs a transaction. The zero value runs at the
// server's default isolation level, read-write, with the default retry
// policy and no timeouts of its own.
type Options struct {
	// Isolation is the level to run at; the zero value leaves it to the
	// server (default_transaction_isolation).
	Isolation isolation.Level
	// ReadOnly starts a READ ONLY transaction: writes fail, and on a
	// replica or under SERIALIZABLE the server can do less bookkeeping.
	ReadOnly bool
	// Deferrable, with Serializable and ReadOnly, waits at BEGIN for a
	// snapshot that can never cause a serialization failure: slower to
	// start, never retried. It is an error with any other combination.
	Deferrable bool
	// Retry is the policy for serialization failures and deadlocks;
	// retry.Never() makes one attempt. nil means retry.Default(), whose
	// budget is counted (DefaultMaxAttempts) when ctx has no deadline and
	// is the deadline when it has one: a call given until a deadline
	// retries until then, however many attempts that takes, with
	// Default's waits (see the package documentation). A Policy given
	// here is kept as it is, its MaxAttempts included.
	Retry *retry.Policy

	// StatementTimeout, LockTimeout and IdleInTransactionTimeout are set
	// with SET LOCAL for this transaction only, in the same round trip as
	// BEGIN. Zero leaves the session's setting as it is. Values are sent
	// in whole milliseconds, rounded up. PostgreSQL holds at most
	// 2147483647 ms (about 24.8 days): a longer or negative value is
	// refused with an error matching ErrInvalid.
	StatementTimeout         time.Duration
	LockTimeout              time.Duration
	IdleInTransactionTimeout time.Duration

	// NoRetryLockTimeout turns off the bound on lock waits in attempts
	// that follow a conflict. By default, once a statement of an attempt
	// has lost to a serialization failure, a deadlock or a bounded wait,
	// the next one begins with SET LOCAL lock_timeout (20 ms, doubling
	// with each conflict, at most 1 s), and a wait that runs out (55P03)
	// is retried like a 40001: a probable deadlock costs a retry instead of
	// deadlock_timeout. A LockTimeout of its own replaces the bound.
	NoRetryLockTimeout bool

	// NoRetryQueue turns off turn-taking for hot transactions. By
	// default, once an attempt has lost to a serialization failure, a
	// deadlock or a bounded lock wait, the calls of the same transaction
	// in this process (the same Name on the same Beginner, or without a
	// Name the same fn: closures of one function literal) take turns:
	// the call that lost runs its next attempt alone, ahead of first
	// attempts, and first attempts run at most a few at a time, a limit
	// that halves on each conflict and grows back while attempts succeed,
	// with their lock waits bounded like a retry's. Waiting for a turn
	// holds no connection and ends with ctx; a RequiresNew call inside
	// another transaction takes no turn. See the package documentation.
	NoRetryQueue bool

	// Name labels the transaction in observer events and logs.
	Name string

	// Observer receives events about the transaction; nil means none.
	Observer Observer
	// LeakThreshold, if positive, reports a transaction still open after
	// this long to the Observer, with the stack where WithTx was called.
	LeakThreshold time.Duration
	// RequiresNew runs fn in a transaction of its own on another
	// connection from db, even when ctx carries a transaction. See the
	// package documentation for when that is useful and what it costs.
	RequiresNew bool
}

// retryPolicy is the policy a call's attempts run under: Retry, or without
// one, retry.Default() when ctx has no deadline and untilDeadline when it
// has. A caller that gave ctx a deadline said how long it will wait for
// the transaction; a count of attempts would give up before then on a hot
// spot, where a call may lose several times in a row through no fault of
// its own, so that the calls that give up are the unlucky ones rather
// than those out of time.
//
// A RequiresNew call inside another transaction (inTx) keeps the count:
// its caller's transaction waits, holding its locks, while it retries.
func (o *Options) retryPolicy(ctx context.Context, inTx bool) *retry.Policy {
	if o.Retry != nil || inTx {
		return o.Retry
	}
	if _, ok := ctx.Deadline(); ok {
		return untilDeadline
	}
	return nil
}

// untilDeadline is retry.Default() without a count: the loop never waits
// past ctx's deadline, and gives up with retry.ErrExhausted when the next
// wait would end after it. Shared by every call; never changed.
var untilDeadline = func() *retry.Policy {
	p := retry.Default()
	p.MaxAttempts = -1
	return p
}()

// validate reports every problem with o at once.
func (o *Options) validate() error {
	var p invalid.Problems
	p.AddErr(o.Isolation.Validate())
	if o.Deferrable && (!o.ReadOnly || o.Isolation != isolation.Serializable) {
		p.Add("Deferrable needs Isolation Serializable and ReadOnly (PostgreSQL ignores it otherwise)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"StatementTimeout", o.StatementTimeout},
		{"LockTimeout", o.LockTimeout},
		{"IdleInTransactionTimeout", o.IdleInTransactionTimeout},
	} {
		p.AddErr(pgtimeout.Check(d.name, d.v))
	}
	if o.LeakThreshold < 0 {
		p.Add("LeakThreshold is negative (%v)", o.LeakThreshold)
	}
	if o.Observer != nil && !observesAnything(o.Observer) {
		p.Add("Observer (%T) implements none of the event interfaces (TxStartObserver, TxRetryObserver, TxAttemptStartObserver, TxAttemptEndObserver, TxEndObserver, CommitResolvedObserver, TxLeakObserver, CallbackPanicObserver): it would never be called", o.Observer)
	}
	return p.Err(ErrInvalid)
}

// observesAnything reports whether obs implements at least one event
// interface. Observer is any, so that a type may implement a single event;
// a value that implements none is a mistake (a method with the wrong
// signature, a pointer receiver on a value) that would go unnoticed.
func observesAnything(obs Observer) bool {
	switch obs.(type) {
	case TxStartObserver, TxRetryObserver, TxAttemptStartObserver, TxAttemptEndObserver, TxEndObserver,
		CommitResolvedObserver, TxLeakObserver, CallbackPanicObserver:
		return true
	}
	return false
}

// beginSQL is the one query that starts the transaction: BEGIN with its
// modes, then any SET LOCAL timeouts, sent together as one simple-protocol
// query so that they cost no extra round trip.
func (o *Options) beginSQL() string {
	if o.StatementTimeout == 0 && o.LockTimeout == 0 && o.IdleInTransactionTimeout == 0 &&
		o.Isolation >= isolation.Default && o.Isolation <= isolation.Serializable {
		return plainBegins[o.Isolation][b2i(o.ReadOnly)][b2i(o.Deferrable)]
	}
	return o.buildBeginSQL()
}

// plainBegins holds the BEGIN of every Options without timeouts, built
// once, so that a call does not build the same string each time.
var plainBegins = func() (t [isolation.Serializable + 1][2][2]string) {
	for l := range t {
		for ro := range 2 {
			for d := range 2 {
				o := Options{Isolation: isolation.Level(l), ReadOnly: ro == 1, Deferrable: d == 1}
				t[l][ro][d] = o.buildBeginSQL()
			}
		}
	}
	return t
}()

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// buildBeginSQL is beginSQL built afresh.
func (o *Options) buildBeginSQL() string {
	if o.Isolation == isolation.Default && !o.ReadOnly && !o.Deferrable &&
		o.StatementTimeout == 0 && o.LockTimeout == 0 && o.IdleInTransactionTimeout == 0 {
		return "begin"
	}
	var b strings.Builder
	b.WriteString("BEGIN")
	if o.Isolation != isolation.Default {
		b.WriteString(" ISOLATION LEVEL ")
		b.WriteString(o.Isolation.String())
	}
	if o.ReadOnly {
		b.WriteString(" READ ONLY")
	}
	if o.Deferrable {
		b.WriteString(" DEFERRABLE")
	}
	setLocal(&b, "statement_timeout", o.StatementTimeout)
	setLocal(&b, "lock_timeout", o.LockTimeout)
	setLocal(&b, "idle_in_transaction_session_timeout", o.IdleInTransactionTimeout)
	return b.String()
}

func setLocal(b *strings.Builder, name string, d time.Duration) {
	ms, ok := pgtimeout.Millis(d) // validate refused what the server cannot hold
	if !ok {
		return
	}
	b.WriteString("; SET LOCAL ")
	b.WriteString(name)
	b.WriteString(" = ")
	b.WriteString(strconv.FormatInt(ms, 10))
}
