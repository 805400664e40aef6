// Package locks takes PostgreSQL row locks the way a repository layer needs
// them: a locking SELECT that cannot silently run in autocommit, rows locked
// by key in an order that cannot deadlock, a lock wait bounded per call, and
// a SKIP LOCKED work queue.
//
//	err := txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
//		var balance int
//		err := locks.QueryRow(ctx, tx, locks.Options{}, "SELECT balance FROM accounts WHERE id = $1", id).Scan(&balance)
//		...
//	})
//
// # Locking reads
//
// [Query] and [QueryRow] take a SELECT and append the locking clause that
// [Options] describe: a [Strength] (FOR UPDATE, FOR NO KEY UPDATE, FOR
// SHARE, FOR KEY SHARE), a [WaitPolicy] (wait, NOWAIT, SKIP LOCKED) and an
// optional OF list of tables. The query is scanned as PostgreSQL's lexer
// reads it, not pattern-matched: words inside strings and comments are
// data, a second statement or an existing locking clause is refused
// ([ErrHasLockingClause]), and table names in OF are quoted with
// pgx.Identifier. The package's fuzz tests have PostgreSQL parse what
// [Options.Apply] produces and check that the server sees one statement
// with the lock asked for. The scan assumes standard_conforming_strings on
// (the default); on a connection where it is off, Query refuses to run.
//
// A row lock lasts until the transaction ends, so a locking read in
// autocommit locks nothing anyone can rely on. Every function here runs in
// the transaction it is given (a pgx.Tx, or a connection inside BEGIN) or
// the one txn.WithTx put in ctx, and otherwise returns [ErrNotInTx]. A
// repository can pass its pool and still join the caller's transaction.
//
// # Deadlock-free multi-row locks
//
// Two transactions that lock rows {1, 2} and {2, 1} one at a time can each
// end up holding the row the other waits for: a deadlock, which the server
// breaks after deadlock_timeout (1s by default) by aborting one of them.
// [ByKey] locks a set of rows in one statement, in the order of their key,
// so that transactions locking overlapping sets through it take the shared
// rows in the same order and never deadlock. The package's tests run many
// concurrent transactions that lock random overlapping sets through ByKey
// and update them in random order, with retries off, and require that none
// fails with a deadlock; another test shows the deadlock that two rows
// locked in opposite orders run into.
//
// # Bounded waits and named errors
//
// [Options.LockTimeout] bounds one call's wait for a row lock: lock_timeout is
// set for the statement and put back after it, in the same round trip.
// With no LockTimeout and a ctx that has a deadline, the wait is bounded by the
// time left, less a margin (a quarter of it, at most a second), so that
// the server gives up, and a savepoint can be rolled back to, before pgx
// would close the connection at the deadline. Neither bound lengthens a
// shorter lock_timeout the transaction already has
// (txn.Options.LockTimeout): the shorter one holds. A wait that runs out, or
// NOWAIT on a locked row, fails with [ErrLockNotAvailable] (SQLSTATE
// 55P03). A deadlock victim's error matches [ErrDeadlock] (40P01), a
// statement_timeout [ErrStatementTimeout] (57014). All keep the
// *pgconn.PgError reachable with errors.As, and [Classify] names the
// errors of the caller's own statements the same way.
//
// What a wait that ran out leaves behind: the connection is open and
// healthy, but the server's error has aborted the transaction, as any
// error does. Every further statement fails with 25P02 until it rolls back.
// To go on with the transaction after [ErrLockNotAvailable], make the call
// inside a nested txn.WithTx: it runs in a savepoint, and the failure rolls
// back only to that.
//
//	// in the function of an outer txn.WithTx, with its ctx:
//	err := txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
//		return locks.QueryRow(ctx, tx, locks.Options{Wait: locks.NoWait}, q, id).Scan(&v)
//	})
//	if errors.Is(err, locks.ErrLockNotAvailable) {
//		// rolled back to the savepoint: the outer transaction goes on
//	}
//
// PostgreSQL's timeouts are int32 milliseconds, at most 2147483647 ms
// (about 24.8 days). A ctx deadline further away sets no lock_timeout; a
// LockTimeout beyond that, or negative, is refused with [ErrInvalid].
//
// # Work queues
//
// A [Queue] claims up to N ready rows with FOR UPDATE SKIP LOCKED, marks
// them done in the same statement, and hands them to a function that does
// the work in the same transaction: if the function fails, everything rolls
// back and the rows are ready again. Each row is processed by exactly one
// committed transaction, however many workers run.
//
// # Observing row-lock waits
//
// Every locking read ([Query], [QueryRow], [ByKey], a [Queue]'s claim)
// reports a RowLockStart and a RowLockEnd event (see [Observer]) to
// [Options.Observer], or else to the Observer of the txn.WithTx
// transaction in ctx: an observer set on the transaction sees its row
// locks too (txotel turns them into spans and a wait-time histogram). The
// end says how the read went ([RowLockOutcome]: acquired, not available,
// skipped, failed), how many rows it locked and how long it took, from
// sending the statement until its rows were read to the end or closed.
// Events carry the strength and wait policy, never the SQL text, its
// arguments or the keys locked.
//
// # Names and values
//
// Table and column names given to this package are quoted with
// pgx.Identifier: a name with quotes, semicolons or comment markers is a
// name, never SQL. Names that quoting cannot carry faithfully (empty, with a
// NUL byte, longer than PostgreSQL's 63 bytes) are refused with
// [ErrInvalid]. Values always travel as parameters. The SQL a program
// writes itself (the query given to Query, a Queue's Ready condition) is
// the program's to get right.
package locks
