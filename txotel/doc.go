// Package txotel reports what txkit does as OpenTelemetry traces and
// metrics. It depends on the OpenTelemetry API only: a program chooses the
// SDK and exporters, and a program that does not import txotel pays
// nothing for it.
//
// One [Observer] serves every package: it is a txn observer (set it as
// txn.Options.Observer), which also receives the row-lock events of the
// locking reads (package locks) run in that transaction, an advisory
// observer (advisory.Options.Observer), gives
// optimistic.ModifyOptions.OnConflict a counter ([Observer.OnConflict]),
// and makes pool metrics ([Observer.Pool]):
//
//	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
//	err = txn.WithTx(ctx, db, txn.Options{Name: "transfer", Observer: obs}, fn)
//
// # Spans
//
//   - "txn.WithTx": one per outermost WithTx call, from before BEGIN until
//     the call returns, retries and backoff included. Attributes:
//     txn.name (when Options.Name is set), txn.isolation, txn.read_only,
//     txn.attempts, txn.outcome ("committed", "rolled back", "commit
//     unknown") and, when COMMIT's answer was lost, txn.commit.resolution
//     (what pg_xact_status said, or "unknown"). Each retry is a span event
//     "txn.retry" with txn.attempt, db.response.status_code (the SQLSTATE)
//     and txn.backoff (seconds). A lost COMMIT is a span event
//     "txn.commit_resolved".
//   - "txn.attempt": one child of "txn.WithTx" per retry, from before
//     its BEGIN to the end of its COMMIT or ROLLBACK; the attempt's
//     statements (a query tracer's spans) and nested calls nest under it.
//     The first attempt runs in "txn.WithTx" itself, so a transaction
//     that commits at once is one span and the first attempt's
//     statements are children of "txn.WithTx"; the first "txn.retry"
//     event says how that attempt ended. With
//     [Options.SpanEveryAttempt], every attempt has its own, the first
//     included. Attributes: txn.attempt (from 2, or from 1 with
//     SpanEveryAttempt), txn.outcome, and for an attempt that failed
//     db.response.status_code (its SQLSTATE, when the server gave one)
//     and error.type; txn.commit.resolution on the attempt whose COMMIT
//     answer was lost.
//   - "txn.savepoint": a nested WithTx, a child of the attempt it ran in.
//
// The attributes of "txn.WithTx" and "txn.savepoint" are set when they
// end, in one call, so a sampler sees only their names and kind.
//   - "locks.row_lock": one per locking read (locks.Query, QueryRow,
//     ByKey, a Queue's claim) in a transaction this Observer observes, or
//     with it as locks.Options.Observer: from sending the statement until
//     its rows were read or closed. Attributes: locks.strength ("FOR
//     UPDATE", ...), locks.wait_policy ("WAIT", "NOWAIT", "SKIP
//     LOCKED"), locks.lock_timeout (seconds, when the call bounded its
//     wait), locks.outcome ("acquired", "not_available" for 55P03,
//     "skipped" for a SKIP LOCKED read that returned no row, "failed"),
//     locks.rows and error.type. A lock not had is an outcome, not an
//     error status; "failed" is. Never the SQL, its arguments or the keys.
//   - "advisory.acquire": one per lock call (Acquire, TryAcquire, LockTx,
//     TryLockTx, a campaign of Lead), covering the wait. Attributes:
//     advisory.name, advisory.kind, advisory.shared, advisory.try,
//     advisory.acquired.
//   - "advisory.hold": one per released or lost session lock, from the
//     moment it was acquired until it was released or seen lost, a child
//     of the span current where Release was called (a root when lost:
//     the loss is seen by the lock's watcher). A lost lock's has
//     advisory.lost=true and an error status "lock_lost".
//   - "advisory.leadership": one per leadership of advisory.Lead, from
//     the won campaign until fn returned, recorded when it ends.
//     Attributes: advisory.name, advisory.term (the fencing token),
//     advisory.lost; a lost leadership has error.type "lock_lost" and an
//     error status, one ended by Lead's ctx has none.
//
// Errors are recorded by kind only (error.type: the SQLSTATE, or a
// txkit error name), never by their text: a server message can quote a
// value from a statement. No attribute carries a connection string, a
// password, SQL text or a statement argument.
//
// # Metrics
//
// Instrument names start with "txkit." for txkit's own and follow the
// OpenTelemetry semantic conventions v1.41.0 (database metrics, status
// "development") for the pool; see README.md for the table. Row locks:
// txkit.locks.wait_time, a histogram of the locking reads' times by
// locks.strength, locks.wait_policy and locks.outcome; the pool tracer
// also counts every statement that could not take a lock (SQLSTATE
// 55P03, the caller's own included) in txkit.locks.not_available.
// Leaders: txkit.advisory.leaderships counts leaderships won (the leader
// changes this process took part in), and txkit.advisory.leader, an
// up-down counter, is 1 while this process leads and 0 otherwise (per
// name with [Options.LockNames]). A transaction name is an attribute only
// when Options.Name is set; a lock name only when [Options.LockNames] is
// set, since locks are often named per row.
//
// txkit.tx.duration and txkit.tx.attempts count every outermost call.
// With an SDK that keeps exemplars (its default filter keeps them for
// measurements made under a sampled span), txkit.tx.duration's come from
// any call's "txn.WithTx" span and txkit.tx.attempts' only from retried
// calls: a call of one attempt records the value 1 without its span.
package txotel
