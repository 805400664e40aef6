package txn

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/internal/invalid"
)

// ErrCommitUnknown is returned when COMMIT was sent but the connection broke
// before its answer came back, and asking the server afterwards could not
// settle whether the transaction committed (its status was unknown, or the
// server could not be reached). The transaction may or may not have
// committed: WithTx does not retry it, because running it again could apply
// it twice. Reconcile from the data, or make the work idempotent. The error
// is a [*CommitUnknownError]: errors.As gives the transaction id and the
// last status the server reported.
//
// Two cases are run again instead. One is a read-write transaction that had
// no transaction id when COMMIT was sent. It wrote nothing, so nothing durable
// depends on its commit; but it may have sent notifications (NOTIFY,
// pg_notify), which get their transaction id while committing, so its
// outcome cannot be asked. Running it again sends them, at least once.
// The other is a READ ONLY transaction whose COMMIT could still fail (SERIALIZABLE
// and not DEFERRABLE, or the level left to the server): it wrote nothing,
// but its reads may be ones the server rejected. When no attempt remains,
// the error matches ErrCommitUnknown (and retry.ErrExhausted).
var ErrCommitUnknown = errors.New("txn: commit outcome unknown: the connection broke during COMMIT")

// ErrInvalid is matched (errors.Is) by the error WithTx and WithTxValue
// return for input that cannot be run, before anything is sent: a nil
// Beginner, a nil fn, or Options with an unknown isolation level, a
// timeout that is negative or beyond PostgreSQL's limit of 2147483647 ms,
// Deferrable without Serializable and ReadOnly, a negative LeakThreshold,
// or a nested call that asks for more than the running transaction gives.
// The error's text lists every problem with the Options at once.
var ErrInvalid = errors.New("txn: invalid input")

// errNilBeginner is returned by WithTx when db is nil.
var errNilBeginner = invalid.Errorf(ErrInvalid, "nil database (pass a *pgxpool.Pool, *pgx.Conn or other Beginner)")

// errNilFn is returned by WithTx and WithTxValue when fn is nil.
var errNilFn = invalid.Errorf(ErrInvalid, "nil fn")

// errOpenResult is WithTx's error when fn returned nil with a result
// still open on the connection.
var errOpenResult = errors.New("txn: fn returned with a result still open (rows not closed, or a QueryRow not scanned); the transaction was not committed and its connection was closed")

// errEnded is what fn's calls get, and WithTx returns, once fn has ended
// the transaction itself with COMMIT or ROLLBACK sent as a statement.
var errEnded = errors.New("txn: fn ended the transaction itself (COMMIT or ROLLBACK sent as a statement); WithTx sent no COMMIT, and what fn sent decided the outcome")

var errCallersTx = invalid.Errorf(ErrInvalid, "the connection is inside a transaction begun without WithTx, which WithTx's COMMIT would end (run the statements on that transaction, or pass a connection outside one)")

// ErrManaged is returned by Commit and Rollback on the transaction WithTx
// hands to fn: WithTx commits or rolls back when fn returns. Return an error
// from fn to roll back. A deferred tx.Rollback in fn is harmless.
var ErrManaged = errors.New("txn: the transaction is committed or rolled back by WithTx when fn returns")

// CommitUnknownError is the error behind [ErrCommitUnknown]: what WithTx
// knew about a transaction whose COMMIT answer was lost. errors.Is(err,
// ErrCommitUnknown) is true for it, and errors.Unwrap gives Cause.
type CommitUnknownError struct {
	// XID is the transaction's id (pg_current_xact_id), or 0 when it is
	// not known: its answer was lost too, the transaction had none (it
	// wrote nothing), or it was READ ONLY or run on a Beginner whose
	// connection WithTx cannot reach.
	XID uint64
	// Status is the last pg_xact_status the server reported for XID
	// ("in progress"), or "" when it was not asked, could not be asked,
	// or no longer knew the transaction.
	Status string
	// Cause is the error that broke COMMIT.
	Cause error

	detail string
	// rerun is set when running the transaction again is safe although
	// its outcome is unknown: it had no transaction id, so nothing but
	// notifications depended on its commit.
	rerun bool
}

func (e *CommitUnknownError) Error() string {
	msg := ErrCommitUnknown.Error()
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg + ": " + e.Cause.Error()
}

// Is makes errors.Is(err, ErrCommitUnknown) true.
func (e *CommitUnknownError) Is(target error) bool { return target == ErrCommitUnknown }

// Unwrap returns Cause.
func (e *CommitUnknownError) Unwrap() error { return e.Cause }

// rerunnable reports whether err is an unknown commit outcome that is safe
// to run again (see CommitUnknownError.rerun), or an attempt a Router
// asked to run again elsewhere.
func rerunnable(err error) bool {
	var e *CommitUnknownError
	return (errors.As(err, &e) && e.rerun) || isRerouted(err)
}

// connLostError is a transaction that certainly did not commit because its
// connection broke. Running it again is safe, so WithTx retries it.
type connLostError struct {
	when string
	err  error
}

func (e *connLostError) Error() string {
	return "txn: connection lost " + e.when + "; the transaction did not commit: " + e.err.Error()
}

func (e *connLostError) Unwrap() error { return e.err }

func isConnLost(err error) bool {
	var c *connLostError
	return errors.As(err, &c)
}

// serverCauseError leads with the server's retryable error that err does
// not show (see withServerCause).
type serverCauseError struct {
	server *pgconn.PgError
	err    error
}

func (e *serverCauseError) Error() string {
	return e.err.Error() + " (the server had reported: " + e.server.Error() + ")"
}

// Unwrap lists the server's error first: errors.As and retry.SQLState find
// it before any follow-on error inside err.
func (e *serverCauseError) Unwrap() []error { return []error{e.server, e.err} }

// retryAttemptError is returned for an attempt whose fn returned nil after
// the server had refused part of it with a retryable error: fn swallowed
// it, or a savepoint rolled it back (a nested WithTx whose error the outer
// fn dropped), after which COMMIT would succeed without the refused work.
// The attempt is rolled back and runs again.
type retryAttemptError struct{ server *pgconn.PgError }

func (e *retryAttemptError) Error() string {
	return "txn: fn returned nil, but the server had refused part of the transaction with a retryable error, so it was rolled back to run again: " + e.server.Error()
}

func (e *retryAttemptError) Unwrap() error { return e.server }
