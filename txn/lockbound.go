package txn

import (
	"errors"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/retry"
)

// Attempts that follow a conflict bound their lock waits. A transaction
// waiting on a row lock far longer than the contended transactions take is
// probably in a deadlock, which the server only finds after
// deadlock_timeout (1 s by default). Once an attempt's statements have lost
// to a conflict (40001, 40P01, or a bounded wait that ran out), the next one
// begins with SET LOCAL lock_timeout, so a wait that long ends in 55P03
// and the whole transaction runs again from BEGIN, as after a 40001. The
// bound doubles with each conflict, so a caller stuck behind a long lock
// holder ends up waiting for it as it would have without the bound.
const (
	lockBoundFirst = 20 * time.Millisecond
	lockBoundMax   = time.Second
)

// lockBound is one call's state for bounding lock waits on retries.
type lockBound struct {
	conflicts int           // attempts lost to a conflict so far
	hot       bool          // the transaction lost a conflict recently: bound the first attempt too
	current   time.Duration // the bound the running attempt began with; 0 for none
	atCommit  bool          // the running attempt reached COMMIT
}

// begin returns the BEGIN query for the next attempt: beginSQL, or, after
// a conflict, BEGIN with the lock_timeout bound.
func (l *lockBound) begin(opts *Options, beginSQL string) string {
	l.current, l.atCommit = 0, false
	if (l.conflicts == 0 && !l.hot) || opts.NoRetryLockTimeout || opts.LockTimeout != 0 {
		return beginSQL
	}
	l.current = lockBoundFirst
	if l.conflicts > 0 {
		l.current = min(lockBoundFirst<<(l.conflicts-1), lockBoundMax)
	}
	o := *opts
	o.LockTimeout = l.current
	return o.beginSQL()
}

// after records how an attempt ended. A serialization failure or deadlock
// met by one of fn's statements, where row-lock waits happen, or a bounded
// wait that ran out, starts or continues the bound. One raised by COMMIT
// does not: the commit-time serializable check involves no lock wait.
//
// It reports whether the attempt lost to any conflict, COMMIT's included:
// the call then queues behind its transaction's other losers.
func (l *lockBound) after(err error, policy *retry.Policy) (conflict bool) {
	if err == nil {
		return false
	}
	conflict = l.ranOut(err) || policy.Retryable(err)
	if conflict && !l.atCommit {
		l.conflicts++
	}
	return conflict
}

// ranOut reports whether err is the bounded attempt's lock wait running
// out: 55P03 in an attempt that began with the bound. Such an error is
// retried whatever the policy says about 55P03.
func (l *lockBound) ranOut(err error) bool {
	if l.current == 0 {
		return false
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable
}

// attemptOptions is opts for an attempt that began with the bound: its
// retry policy also treats 55P03 as retryable, for the recorder and the
// savepoints that classify errors within the attempt.
func (l *lockBound) attemptOptions(opts *Options) *Options {
	o := *opts
	p := retry.Default() // what a nil Retry means
	if opts.Retry != nil {
		*p = *opts.Retry
	}
	p.RetryLockNotAvailable = true
	o.Retry = p
	return &o
}
