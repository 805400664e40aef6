package locks

import (
	"errors"
	"strings"
	"time"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/pgtimeout"
)

// Options say how a locking read locks. The zero value locks FOR UPDATE,
// waits, and leaves lock_timeout as the transaction has it (but see Timeout
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
	// Timeout bounds the wait for a row lock in this call: lock_timeout is
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
	// lock_timeout. A positive Timeout with such a ctx uses the smaller of
	// the two.
	//
	// Either bound only tightens the lock_timeout the transaction already
	// has, never lengthens it: when that is shorter (and not 0), it stays
	// for this call too. So txn.Options.LockTimeout, which costs nothing per
	// statement, bounds every lock wait of a transaction.
	Timeout time.Duration
}

// Validate reports every problem with o at once; the error matches
// [ErrInvalid].
func (o Options) Validate() error {
	var errs []error
	if err := o.Strength.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Wait.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, name := range o.Of {
		if err := checkIdent("Of", name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := pgtimeout.Check("Timeout", o.Timeout); err != nil {
		errs = append(errs, invalid("%s", err.Error()))
	}
	return errors.Join(errs...)
}

// String returns the locking clause o stands for, as it is appended to a
// query: FOR UPDATE, FOR SHARE OF "jobs" SKIP LOCKED, ... Timeout is not
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
		// unquoted; Validate says what is wrong with it.
		q, err := quoteIdent("Of", name)
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

// Apply returns query with o's locking clause appended. It refuses, with an
// error matching [ErrInvalid], anything but a single SELECT (or WITH ...
// SELECT, TABLE, or a parenthesized SELECT); and with [ErrHasLockingClause]
// a query that already has a locking clause, at any depth. Comments and
// string constants are skipped, never read as SQL, with the boundaries
// PostgreSQL's lexer gives them when standard_conforming_strings is on; a
// NUL byte is refused. A trailing semicolon is dropped, and a trailing
// comment is kept after the clause.
//
// [Query] and [QueryRow] call Apply; it is exported so that a query can be
// checked or logged without running it.
func (o Options) Apply(query string) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	toks, err := scan(query)
	if err != nil {
		return "", err
	}
	toks, rest, err := singleStatement(query, toks)
	if err != nil {
		return "", err
	}
	switch first := toks[0]; {
	case first.kind == tokOpen:
	case first.kind == tokWord && (first.text == "SELECT" || first.text == "WITH" || first.text == "TABLE"):
	default:
		return "", invalid("a locking clause goes on a SELECT, and the query starts with %s", ident.Show(query[first.start:first.end]))
	}
	if hasLockingClause(toks) {
		return "", ErrHasLockingClause
	}
	end := toks[len(toks)-1].end
	return query[:end] + " " + o.String() + rest, nil
}

// singleStatement returns the tokens of the one statement in query and the
// text after its last token without the trailing semicolons (comments,
// spaces). It refuses an empty query and a second statement.
func singleStatement(query string, toks []token) ([]token, string, error) {
	last := -1
	for i, t := range toks {
		if t.kind != tokSemi {
			if last >= 0 && toks[last+1].kind == tokSemi {
				return nil, "", invalid("query has more than one statement")
			}
			last = i
		}
	}
	if last < 0 {
		return nil, "", invalid("empty query")
	}
	var rest strings.Builder
	from := toks[last].end
	for _, t := range toks[last+1:] {
		rest.WriteString(query[from:t.start])
		from = t.end
	}
	rest.WriteString(query[from:])
	return toks[:last+1], rest.String(), nil
}

// hasLockingClause reports whether toks hold FOR UPDATE, FOR NO KEY UPDATE,
// FOR SHARE or FOR KEY SHARE anywhere, subqueries included. FOR is
// otherwise followed by a number or expression (substring(s FROM 1 FOR 2)),
// never by these words unquoted.
func hasLockingClause(toks []token) bool {
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind != tokWord || toks[i].text != "FOR" || toks[i+1].kind != tokWord {
			continue
		}
		switch toks[i+1].text {
		case "UPDATE", "SHARE", "NO", "KEY":
			return true
		}
	}
	return false
}
