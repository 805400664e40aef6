package txn

import (
	"errors"
	"strings"
)

// ErrCommitUnknown is returned when COMMIT was sent but the connection broke
// before its answer came back, and asking the server afterwards could not
// settle whether the transaction committed (its status was unknown, or the
// server could not be reached). The transaction may or may not have
// committed: WithTx does not retry it, because running it again could apply
// it twice. Reconcile from the data, or make the work idempotent.
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

// ErrNilBeginner is returned by WithTx when db is nil.
var ErrNilBeginner = errors.New("txn: nil database (pass a *pgxpool.Pool, *pgx.Conn or other Beginner)")

// errNilFn is returned by WithTx and WithTxValue when fn is nil.
var errNilFn = errors.New("txn: nil fn")

// ErrInvalidOptions is matched by the error WithTx returns for Options that
// cannot be run: an unknown isolation level, a timeout that is negative or
// beyond PostgreSQL's limit of 2147483647 ms, Deferrable without
// Serializable and ReadOnly, or a nested call that asks for more than the
// running transaction gives.
var ErrInvalidOptions = errors.New("txn: invalid options")

// ErrManaged is returned by Commit and Rollback on the transaction WithTx
// hands to fn: WithTx commits or rolls back when fn returns. Return an error
// from fn to roll back. A deferred tx.Rollback in fn is harmless.
var ErrManaged = errors.New("txn: the transaction is committed or rolled back by WithTx when fn returns")

// optionsError is an ErrInvalidOptions with what was wrong.
type optionsError struct{ problems []string }

func (e *optionsError) Error() string {
	return "txn: invalid options: " + strings.Join(e.problems, "; ")
}

func (e *optionsError) Is(target error) bool { return target == ErrInvalidOptions }
