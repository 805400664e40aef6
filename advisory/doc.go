// Package advisory provides named PostgreSQL advisory locks for work that
// must run in one place at a time: a nightly billing run, a migration, the
// one scheduler of a cluster.
//
//	err := advisory.WithLock(ctx, pool, "nightly-billing", advisory.Options{}, func(ctx context.Context) error {
//		return runBilling(ctx) // ctx is cancelled if the lock is lost
//	})
//
// How a lock is taken and held is said by [Options], a plain struct whose
// zero value is the default, passed before fn as txn.WithTx takes its
// options. Bad input (an empty name, impossible options, a nil pool or fn)
// is refused with an error matching [ErrInvalid].
//
// # Session locks and transaction locks
//
// A session lock ([Acquire], [TryAcquire], [WithLock]) is held by a server
// session until it is released. A [Lock] owns one connection of the pool
// for as long as it is held, so the lock can neither be released by
// someone else's use of the connection nor returned to the pool still
// held: [Lock.Release] unlocks and hands the connection back clean, and if
// the unlock fails, is not confirmed, or cannot be sent because ctx is
// done, it closes the connection instead (the server then drops every lock
// of that session). Each Lock therefore takes one connection from the
// pool; size the pool for it.
//
// A transaction lock ([LockTx], [TryLockTx]) is taken inside a transaction
// (txn.WithTx's tx, or any pgx.Tx) and is released by its COMMIT or
// ROLLBACK. It holds no connection of its own and works through PgBouncer
// in transaction mode. Prefer it when the protected work fits in one
// transaction.
//
// [Options.Shared] takes either kind in shared mode: shared holders run together,
// an exclusive holder runs alone.
//
// # Names and keys
//
// PostgreSQL identifies advisory locks by a bigint, or by a pair of int4s.
// A name maps to its bigint by [Key]: the first 8 bytes of SHA-256 of the
// name's UTF-8 bytes, big-endian, as a signed int64. The mapping will never
// change: processes of different releases, or in other languages, take the
// same lock for the same name, and SQL can compute it ([KeySQL]):
//
//	SELECT ('x' || left(encode(sha256(convert_to('nightly-billing', 'UTF8')), 'hex'), 16))::bit(64)::bigint;
//
// 64 bits make collisions negligible (about n²/2⁶⁵ for n names: one in 37
// million at a million names), where 32-bit mappings such as CRC32
// collide among tens of thousands of names. Two names that did collide
// would share a lock: they would exclude each other, never fail to.
//
// [Options.Namespace] uses the (int4, int4) form instead, (namespace, name) with
// each half from its own string (see [PairKey]), so operators can tell a
// namespace's locks apart in pg_locks. Its name half has 32 bits: keep it
// for modest, known sets of names. The two forms never collide with each
// other. Names and namespaces must be non-empty valid UTF-8 without a NUL
// byte: PostgreSQL text holds nothing else, so [KeySQL] could not compute
// the key of any other. Error text quotes at most the first 64 bytes of a
// name, followed by its length.
//
// [Inspect] lists the advisory locks in pg_locks with the names behind
// their keys, for the names it is given.
//
// # Waiting
//
// [Acquire] and [LockTx] wait for the lock, and never poll: the server's
// lock queue wakes them. The wait is bounded by ctx's deadline and the
// [Options.LockTimeout], which become a server-side lock_timeout for the lock
// statement only; a timed-out wait returns an error matching
// [ErrNotAcquired] that, for session locks, says which sessions hold the
// lock ([NotAcquiredError]). PostgreSQL's lock_timeout holds at most
// 2147483647 ms (about 24.8 days): a [Options.LockTimeout] beyond that, or negative, is
// refused with [ErrInvalid], and a ctx deadline further away sets
// no lock_timeout (the session's own, if any, stays), so the wait ends by
// ctx at the deadline. Cancelling ctx sends the server a cancel
// request, so the connection survives the interrupted wait and goes back
// to the pool; in the rare case where the lock was granted just as the
// cancel arrived, the connection is closed instead, which releases it.
//
// # Loss
//
// A session lock lives as long as its session. If the connection dies (the
// server restarts, an operator runs pg_terminate_backend, the network
// breaks) the lock is gone and another process may take it. While a Lock
// is held a watcher checks its connection every [Options.CheckInterval] (one
// round trip, SELECT pg_backend_pid(); one second by default, at least
// [MinCheckInterval]) and closes [Lock.Lost] within about one interval of
// a loss (when the connection stops answering rather than breaking, a
// check first waits an interval, at least a second, for the answer);
// [WithLock] and [Lead] cancel fn's ctx with a cause matching
// [ErrLockLost]. The watcher stops on Release or loss; Release does not
// close Lost.
//
// # Fencing
//
// Loss is seen late, never early: between the moment a session dies and
// the moment its process notices, another process can take the lock. A
// holder that is paused (by GC, by a slow disk, by a network partition)
// can even act after a new holder has started. Fencing makes the database
// refuse such late writes. With [Options.Fence], each acquisition takes a token
// from a per-key counter that only grows ([Lock.Token]); store the token
// with the data the lock protects, and write only where the stored token
// is not newer:
//
//	UPDATE report SET body = $2, fence = $3 WHERE id = $1 AND fence <= $3
//
// A write that matches no row came from a holder whose lock has passed to
// someone else: stop. The counter lives in the table [FenceTable], created
// on first use ([FenceTableDDL], [CreateFenceTable] to create it ahead of
// time); taking the token happens in the lock statement itself, so it costs
// no extra round trip, but it commits a small write.
//
// # Leader election
//
// [Lead] campaigns for a name, runs fn while leader with a ctx that ends
// on loss, campaigns again after a loss, and returns when its ctx ends.
// A failed campaign is retried only when the failure can pass (a broken
// connection, a server restarting or out of connections, a deadlock);
// any other error the server answers with is returned.
// Each leadership's term is a fencing token, so leaders can fence their
// writes. Contenders wait in the server's lock queue, so when a leader's
// session ends the next leader starts at once.
//
// # What is refused
//
// Some setups accept the lock functions but do not lock, and are refused
// with an error rather than handing out a lock that excludes nothing. The
// checks ride on the lock statement, at no extra round trip:
//
//   - CockroachDB implements the advisory lock functions as no-ops. It is
//     recognised by the crdb_version parameter it reports at connection
//     start: [ErrUnsupportedServer], for every kind of lock.
//   - A connection pooler in transaction mode (PgBouncer's usual setting)
//     hands the server connection to other clients after each
//     transaction, so a session lock would stay behind on it, held by
//     nobody. A pooler is recognised because the backend pid it gave the
//     client at startup (BackendKeyData) is not the pg_backend_pid() of
//     the server session running the statement; the lock function only
//     runs when the two agree. Session locks through a pooler return
//     [ErrPooler]; transaction locks work. A pooler that keeps one server
//     connection per client (PgBouncer's pool_mode = session) is safe:
//     [Options.SkipPoolerCheck] lets session locks through, and the watcher then
//     also treats a change of server session as a loss.
//
// # Observing, leaks
//
// An [Observer] ([Options.Observer]; [NewSlogObserver] logs through log/slog)
// receives lock wait time, hold time, release, loss and leak events. It
// implements only the event interfaces it wants ([AcquireEndObserver],
// [LockLostObserver], ...), as txn's observers do; the convention is
// described in the documentation of package [github.com/txkit/txkit]. A
// Lock that is garbage collected without Release is reported as a leak,
// with the stack that acquired it, and released then, so that a forgotten
// Release does not hold the lock and a pool connection forever.
package advisory
