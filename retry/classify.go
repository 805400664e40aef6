package retry

import (
	"errors"

	"github.com/jackc/pgerrcode"
)

// sqlStater is what *pgconn.PgError (and other drivers' errors) implement.
type sqlStater interface{ SQLState() string }

// SQLState returns the SQLSTATE of the first error in err's tree that has
// one, or "" if none does.
func SQLState(err error) string {
	var s sqlStater
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// Retryable reports whether err, or an error it wraps, is one that running
// the whole transaction again can cure: a serialization failure (40001) or
// a deadlock (40P01). Classification is by SQLSTATE only, never by message
// text, so it sees through any %w wrapping.
func Retryable(err error) bool {
	return retryableState(SQLState(err), false)
}

// Retryable reports whether p retries err: what the package-level
// Retryable accepts, and lock_not_available (55P03) when the policy opts in
// with RetryLockNotAvailable. A nil p behaves as Default().
func (p *Policy) Retryable(err error) bool {
	return retryableState(SQLState(err), p != nil && p.RetryLockNotAvailable)
}

// RetryableState is Retryable for a bare SQLSTATE code.
func (p *Policy) RetryableState(code string) bool {
	return retryableState(code, p != nil && p.RetryLockNotAvailable)
}

func retryableState(code string, lockNotAvailable bool) bool {
	switch code {
	case pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected:
		return true
	case pgerrcode.LockNotAvailable:
		return lockNotAvailable
	}
	return false
}
