// Package txkit is a toolkit for concurrency control on PostgreSQL, built on
// pgx v5 and a shared pgxpool.Pool.
//
// The work lives in its subpackages:
//
//   - [github.com/txkit/txkit/isolation]: isolation levels, parsing, and what
//     each level prevents in PostgreSQL;
//   - [github.com/txkit/txkit/retry]: which errors are worth another attempt
//     and the backoff loop that makes it;
//   - [github.com/txkit/txkit/txn]: WithTx, which runs a function in a
//     transaction at a chosen isolation level and retries serialization
//     failures and deadlocks from BEGIN;
//   - locks, advisory and optimistic: row locks, named advisory locks and
//     versioned updates built on the above;
//   - [github.com/txkit/txkit/pool]: the connection side: a pool sized to the
//     server's limits, bounded acquires, leak reports, a bounded Close, and
//     secrets kept out of everything it returns or logs;
//   - [github.com/txkit/txkit/cluster]: a primary and its streaming replicas
//     behind WithTx: read-only work on a replica within a lag bound,
//     read-your-writes sessions, and failover at the cost of a retry;
//   - [github.com/txkit/txkit/txotel]: OpenTelemetry traces and metrics for
//     all of the above, on the OpenTelemetry API only.
//
// A typical call:
//
//	err := txn.WithTx(ctx, pool, txn.Options{Isolation: isolation.Serializable},
//		func(ctx context.Context, tx pgx.Tx) error {
//			_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, from)
//			return err
//		})
//
// The function may run more than once: keep side effects that must happen
// once out of it, and wrap errors with %w so their cause stays visible.
//
// # Observing: one convention for every package
//
// txkit reports what it does through hooks, never through a dependency: no
// package imports a logging or tracing library, and adapters (the slog
// observers here, OpenTelemetry on top) are written against the hooks.
//
// An observer is any value set as an Observer option (txn.Options.Observer,
// advisory.Options.Observer, locks.Options.Observer). It is told about events: things that
// happened to a transaction or a lock, each with a data struct of plain
// values. Observers are called on the goroutine the package documents for
// each event, must be quick, must be safe for concurrent use, and must not
// use the transaction or connection they are told about.
//
// Events are named <Subject><Stage>, after pgx's tracers (TraceQueryStart
// takes TraceQueryStartData): TxStart, TxRetry, TxAttemptStart,
// TxAttemptEnd, TxEnd, CommitResolved, TxLeak, CallbackPanic in txn;
// AcquireStart, AcquireEnd, LockReleased, LockLost, LockLeak, LeaderStart,
// LeaderEnd in advisory; RowLockStart, RowLockEnd in locks. A
// span of time is a Start event and an End event; a Start method returns
// the ctx that is passed to the matching End, so a tracer can carry its
// span in it. For every event X there is:
//
//   - a method X(ctx, XData) (a ctx-free X(XData) for events raised on a
//     goroutine of the package's own, such as TxLeak and LockLost);
//   - a data struct XData, whose first field is Name: the transaction's
//     Options.Name or the lock's name (row-lock events have none: a row
//     has no name, and its key is never carried);
//   - a one-method interface XObserver.
//
// The Observer option is typed any, and the package finds which XObserver
// interfaces it implements by type assertion, as pgxpool finds an
// AcquireTracer on a pgx.QueryTracer. An observer implements only the
// events it cares about, and the package sends each event only to an
// observer that implements its interface; the assertion costs no
// allocation, so a call with no observer costs what it did before. Adding an
// event therefore means adding a data struct, an interface and the call;
// no existing observer stops compiling, and none is sent an event it did
// not ask for. Fields may be added to a data struct; none is removed or
// changed in meaning. The slog observers implement every interface, and
// tests check that they do.
//
// Packages that are building blocks rather than services take the same
// events as func fields of their options, named On<Event>: retry.Hooks
// has OnRetry(RetryData); optimistic.ModifyOptions has OnConflict, given
// the *ConflictError that is the event. A new hook is a new field, which
// breaks no caller either.
//
// A package whose calls run inside a txn.WithTx transaction may send its
// events to that transaction's Observer (txn.ObserverFrom) when its own
// Observer option is nil: locks does, so one observer set on the
// transaction also sees the row locks taken in it. Each statement locks
// sends still goes through pgx, so pgx's QueryTracer (otelpgx, tracelog)
// sees it too.
//
// The slog observers, txn.NewSlogObserver and advisory.NewSlogObserver,
// log each event as one line whose message starts with the package name
// ("txn: retrying transaction", "advisory: lock lost") and whose
// attributes use one set of keys: "name" for the transaction or lock,
// "error" for an error's text, and "attempt", "attempts", "duration",
// "wait", "held", "open", "outcome", "sqlstate", "xid", "status", "stack",
// "panic", "kind", "shared", "namespace", "token", "pid", "discarded",
// "term" and "lost" for the rest. A nil logger discards everything; the
// default logger is never set. No event and no log line carries a
// connection string or a password: events carry names, durations, counts
// and errors, and pgx's errors name the user, host and database they
// tried, never the password.
package txkit
