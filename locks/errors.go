package locks

import (
	"errors"

	"github.com/jackc/pgerrcode"

	problems "github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/retry"
)

// ErrLockNotAvailable is matched (errors.Is) by the error of a locking read
// that could not have its lock: NOWAIT met a locked row, or the wait ran past
// lock_timeout ([Options.LockTimeout], txn.Options.LockTimeout, or the time left
// before ctx's deadline). SQLSTATE 55P03. The transaction is aborted, as for
// any error; errors.As still finds the *pgconn.PgError.
var ErrLockNotAvailable = errors.New("locks: lock not available")

// ErrDeadlock is matched by the error of a statement the server chose as the
// victim of a deadlock (SQLSTATE 40P01). Running the whole transaction again
// cures it, and txn.WithTx does so; taking locks in one order ([ByKey])
// keeps it from happening.
var ErrDeadlock = errors.New("locks: deadlock detected")

// ErrStatementTimeout is matched by the error of a statement the server
// cancelled (SQLSTATE 57014, query_canceled): it ran past statement_timeout.
// The server reports a cancel request (pg_cancel_backend) with the same
// code, so a statement cancelled that way matches too.
var ErrStatementTimeout = errors.New("locks: statement cancelled (statement_timeout)")

// ErrNotInTx is returned when a locking read is asked for outside a
// transaction. In autocommit a row lock is released as soon as the
// statement ends, so the read would lock nothing the caller could rely on:
// an easy mistake that nothing else would report.
var ErrNotInTx = errors.New("locks: a locking read needs a transaction (pass a pgx.Tx, or call inside txn.WithTx)")

// ErrHasLockingClause is returned when the query given to [Query] or
// [QueryRow] already has a locking clause: appending another would lock
// more, or differently, than the caller wrote.
var ErrHasLockingClause = errors.New("locks: the query already has a locking clause")

// ErrInvalid is matched by the error returned for input that cannot be run:
// an unknown strength or wait policy, an empty or over-long table or column
// name, a query that is not a single SELECT, a Queue without a key.
var ErrInvalid = errors.New("locks: invalid input")

// invalid returns an error matching ErrInvalid with a message that says
// what was wrong.
func invalid(format string, args ...any) error {
	return problems.Errorf(ErrInvalid, format, args...)
}

// Classify returns err with a name a caller can test for with errors.Is when
// its SQLSTATE is one of the lock outcomes: 55P03 [ErrLockNotAvailable],
// 40P01 [ErrDeadlock], 57014 [ErrStatementTimeout]. Other errors, and nil,
// come back unchanged. The result still unwraps to err, so errors.As finds
// the *pgconn.PgError and retry.Retryable sees the SQLSTATE.
//
// Every function of this package already returns classified errors;
// Classify is for the caller's own statements.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var c *classified
	if errors.As(err, &c) {
		return err
	}
	var kind error
	switch retry.SQLState(err) {
	case pgerrcode.LockNotAvailable:
		kind = ErrLockNotAvailable
	case pgerrcode.DeadlockDetected:
		kind = ErrDeadlock
	case pgerrcode.QueryCanceled:
		kind = ErrStatementTimeout
	default:
		return err
	}
	return &classified{kind: kind, err: err}
}

// classified is an error with the SQLSTATE's name attached.
type classified struct {
	kind error // one of the sentinels above
	err  error
}

func (e *classified) Error() string        { return e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.kind }
