// Package txotel reports what txkit does as OpenTelemetry traces and
// metrics. It depends on the OpenTelemetry API only: a program chooses the
// SDK and exporters, and a program that does not import txotel pays
// nothing for it.
//
// One [Observer] serves every package: it is a txn observer (set it as
// txn.Options.Observer), an advisory observer (advisory.Options.Observer),
// gives optimistic.ModifyOptions.OnConflict a counter ([Observer.OnConflict]),
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
//     "txn.commit_resolved". A nested WithTx is a child span
//     "txn.savepoint".
//   - "advisory.acquire": one per lock call (Acquire, TryAcquire, LockTx,
//     TryLockTx, a campaign of Lead), covering the wait. Attributes:
//     advisory.name, advisory.kind, advisory.shared, advisory.try,
//     advisory.acquired.
//   - "advisory.hold": one per released or lost session lock, from the
//     moment it was acquired until it was released or seen lost, a child
//     of the span current where Release was called.
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
// "development") for the pool; see README.md for the table. Row locks
// (package locks) have no events of their own: the pool tracer counts
// statements that could not take a lock (SQLSTATE 55P03) in
// txkit.locks.not_available; their waits show as otelpgx's query spans. A transaction
// name is an attribute only when Options.Name is set; a lock name only
// when [Options.LockNames] is set, since locks are often named per row.
package txotel
