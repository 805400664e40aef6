package advisory

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/invalid"
)

// ErrNotAcquired is matched (errors.Is) by the error TryAcquire returns
// when another session holds the lock, and by the error Acquire and LockTx
// return when the wait ended at the ctx deadline, [Options.LockTimeout] or
// the session's own lock_timeout. The error is a [*NotAcquiredError]; for a
// session lock it says who held the lock. A wait ended by a cancelled ctx
// returns the ctx's error instead. (TryLockTx reports a held lock as false,
// without an error.)
var ErrNotAcquired = errors.New("advisory: lock not acquired")

// ErrLockLost is matched by the error that reports a lock gone without
// Release: the connection holding it died or was closed (the server ended
// the session, the network broke, the server restarted), or the server said
// the lock was not held when it was released. Whoever holds the lock now,
// work done since the loss was not protected by it. [Lock.Lost] is closed
// at the same time, and [WithLock] cancels fn's ctx with this as the cause.
var ErrLockLost = errors.New("advisory: lock lost")

// ErrInvalid is matched by the error returned for input that cannot be
// used: a lock name or namespace that is empty, not valid UTF-8 or holds a
// NUL byte; [Options] with impossible values or that cannot be used
// together (the error lists every problem); a nil pool, transaction,
// database or fn. Nothing was locked or sent to the server.
var ErrInvalid = errors.New("advisory: invalid input")

// ErrPooler is matched by the error a session lock returns when its
// connection reaches the server through a connection pooler: the backend
// process id the server reports differs from the one the connection was
// given at startup, which only happens when something in between relays
// the session. A pooler in transaction or statement mode (PgBouncer's
// pool_mode = transaction, the usual setting) hands the server connection
// to other clients between transactions, and a session lock would stay
// behind on it: held by no one, released by no one. Nothing is locked when
// this error is returned.
//
// Use a transaction lock ([LockTx]) through such a pooler, or connect
// directly to the server. If the pooler keeps one server connection per
// client for the client's lifetime (PgBouncer's pool_mode = session),
// [Options.SkipPoolerCheck] lets session locks through; the lock's watcher then
// treats a change of backend as a loss.
var ErrPooler = errors.New("advisory: session lock refused: the connection goes through a pooler")

// ErrUnsupportedServer is matched by the error returned when the server
// accepts the advisory lock functions but does not lock: CockroachDB
// implements them as no-ops, so a lock there would exclude nothing.
var ErrUnsupportedServer = errors.New("advisory: the server does not implement advisory locks")

// errNil is the error for a nil argument.
func errNil(what string) error {
	return invalid.Errorf(ErrInvalid, "nil %s", what)
}

// NotAcquiredError is the error behind [ErrNotAcquired].
type NotAcquiredError struct {
	Name string
	// Waited is how long the call waited, connection acquisition included.
	Waited time.Duration
	// Holders are the sessions holding the lock when a session lock's wait
	// timed out or TryAcquire failed, looked up after the fact on the
	// same connection; empty when the lookup was not possible (for
	// transaction locks the transaction is aborted by then).
	Holders []Holder
	// Err is why the wait ended: the server's lock_timeout error (SQLSTATE
	// 55P03), and context.DeadlineExceeded when the ctx deadline set it;
	// nil for a failed try.
	Err error
}

func (e *NotAcquiredError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "advisory: lock %s not acquired", ident.Show(e.Name))
	if e.Err != nil {
		fmt.Fprintf(&b, " after waiting %v", e.Waited.Round(time.Millisecond))
	}
	if len(e.Holders) > 0 {
		b.WriteString(": held by ")
		for i, h := range e.Holders {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(h.String())
		}
	} else {
		b.WriteString(": held by another session")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *NotAcquiredError) Is(target error) bool { return target == ErrNotAcquired }
func (e *NotAcquiredError) Unwrap() error        { return e.Err }

// LostError is the error behind [ErrLockLost].
type LostError struct {
	Name string
	Held time.Duration // from acquisition to the moment the loss was seen
	Err  error         // what showed the loss
}

func (e *LostError) Error() string {
	return fmt.Sprintf("advisory: lock %s lost after %v: %v", ident.Show(e.Name), e.Held.Round(time.Millisecond), e.Err)
}

func (e *LostError) Is(target error) bool { return target == ErrLockLost }
func (e *LostError) Unwrap() error        { return e.Err }

// poolerError is ErrPooler with the evidence.
type poolerError struct {
	name          string
	startupPID    uint32
	serverBackend int64
}

func (e *poolerError) Error() string {
	return fmt.Sprintf("%v (lock %s: the connection was started as backend %d but the server runs it as backend %d); "+
		"use LockTx inside a transaction, connect to the server directly, or set Options.SkipPoolerCheck if the pooler pins "+
		"one server connection per client (PgBouncer pool_mode=session)",
		ErrPooler, ident.Show(e.name), e.startupPID, e.serverBackend)
}

func (e *poolerError) Is(target error) bool { return target == ErrPooler }

// serverError is ErrUnsupportedServer with what the server said it is.
type serverError struct{ what string }

func (e *serverError) Error() string {
	return ErrUnsupportedServer.Error() + " (" + e.what + "; its advisory lock functions return without locking)"
}

func (e *serverError) Is(target error) bool { return target == ErrUnsupportedServer }
