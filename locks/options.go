package locks

import (
	"strings"
	"time"

	"github.com/txkit/txkit/internal/ident"
	problems "github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/internal/pgtimeout"
)

// names validates and quotes the table and column names given to this
// package.
var names = ident.Names{Invalid: ErrInvalid}

// Options say how a locking read locks. The zero value locks FOR UPDATE,
// waits, and leaves lock_timeout as the transaction has it (but see LockTimeout
// for a ctx with a deadline).
type Options struct {
	// Strength is the row lock to take; the zero value is ForUpdate.
	Strength Strength
	// Wait is what to do about rows locked by others; the zero value waits.
	Wait WaitPolicy
	// Of limits the lock to the rows of these tables of the query's FROM
	// list, by the name or alias the query uses there (PostgreSQL allows
	// no schema here). Empty locks rows of every table in FROM. Each name
	// is quoted, so it must match the FROM entry exactly: an unquoted
	// FROM name is lower-case. [ByKey] and [Queue] name their one table
	// themselves and refuse Of.
	Of []string
	// LockTimeout bounds the wait for a row lock in this call: lock_timeout is
	// set for the statement and put back as it was after it, in the same
	// round trip as the statement. A wait that runs out fails with
	// [ErrLockNotAvailable]. It must be between 0 and PostgreSQL's limit,
	// 2147483647 ms (about 24.8 days); anything else is refused with
	// [ErrInvalid].
	//
	// Zero leaves lock_timeout as the transaction has it, except that with
	// the Wait policy and a ctx that has a deadline, the wait is bounded by
	// the time left, less a margin of a quarter of it (at most 1s): the
	// server then gives up first and reports ErrLockNotAvailable, instead of
	// pgx closing the connection when ctx expires; the margin leaves time
	// for the answer and for a nested txn.WithTx's rollback to its
	// savepoint, on a slow link or a loaded machine. The connection survives,
	// but the server's error aborts the transaction, as any error does,
	// unless the call runs in a nested txn.WithTx (a savepoint). A deadline
	// further away than the server's limit bounds nothing and sets no
	// lock_timeout. A positive LockTimeout with such a ctx uses the smaller of
	// the two.
	//
	// Either bound only tightens the lock_timeout the transaction already
	// has, never lengthens it: when that is shorter (and not 0), it stays
	// for this call too. So txn.Options.LockTimeout, which costs nothing per
	// statement, bounds every lock wait of a transaction.
	LockTimeout time.Duration
	// Observer receives this call's row-lock events (see [Observer]); nil
	// means the Observer of the txn.WithTx transaction in ctx, if any.
	Observer Observer
}

// validate reports every problem with o at once; the error matches
// [ErrInvalid].
func (o Options) validate() error {
	var p problems.Problems
	p.AddErr(o.Strength.validate())
	p.AddErr(o.Wait.validate())
	for _, name := range o.Of {
		p.AddErr(names.Check("Of", name))
	}
	p.AddErr(pgtimeout.Check("LockTimeout", o.LockTimeout))
	if o.Observer != nil && !observesAnything(o.Observer) {
		p.Add("Observer (%T) implements none of the event interfaces (RowLockStartObserver, RowLockEndObserver): it would never be called", o.Observer)
	}
	return p.Err(ErrInvalid)
}

// String returns the locking clause o stands for, as it is appended to a
// query: FOR UPDATE, FOR SHARE OF "jobs" SKIP LOCKED, ... LockTimeout is not
// part of the clause and is not shown.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString(o.Strength.String())
	for i, name := range o.Of {
		if i == 0 {
			b.WriteString(" OF ")
		} else {
			b.WriteString(", ")
		}
		// Quoted even when invalid, so that String never prints a name
		// unquoted; Apply says what is wrong with it.
		q, err := names.Quote("Of", name)
		if err != nil {
			q = `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		}
		b.WriteString(q)
	}
	if o.Wait != Wait {
		b.WriteString(" ")
		b.WriteString(o.Wait.String())
	}
	return b.String()
}
