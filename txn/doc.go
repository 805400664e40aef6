// Package txn runs functions in PostgreSQL transactions and retries them
// when the server asks for it.
//
//	err := txn.WithTx(ctx, pool, txn.Options{Isolation: isolation.Serializable},
//		func(ctx context.Context, tx pgx.Tx) error {
//			_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, 1)
//			return err
//		})
//
// # What WithTx guarantees
//
// The isolation level, READ ONLY, DEFERRABLE and the SET LOCAL timeouts of
// [Options] travel with BEGIN, and BEGIN travels with fn's first statement:
// on a connection WithTx takes from a pool or a [Router], BEGIN, its SET
// LOCALs and fn's first Exec (with arguments), Query or QueryRow go in one
// pgx batch (pgx's Batch.BeginTx), so a call costs one round trip per
// statement of fn and one for COMMIT, one fewer than BEGIN sent alone.
// PostgreSQL takes the snapshot at the first statement either way. A first
// call that cannot carry BEGIN sends it alone ahead of itself: Begin,
// CopyFrom, SendBatch, Prepare, Conn, LargeObjects, an Exec without
// arguments (which pgx sends unprepared as a simple query), a statement
// with a pgx option other than a QueryRewriter, a statement new to the
// connection in an attempt with SET LOCALs, any call on a connection whose
// tracer does not see batches or whose mode is QueryExecModeDescribeExec,
// and any call on a caller's own *pgx.Conn or *pgxpool.Conn. A fn that
// sends nothing sends neither BEGIN nor COMMIT. If BEGIN fails, the
// statement that carried it gets BEGIN's error and so does every later
// call, without sending anything: nothing fn does runs outside the
// // transaction. A serialization failure (40001) or deadlock (40P01)
// at any statement or at COMMIT restarts the whole transaction from BEGIN
// under the [retry.Policy] in Options (see "Retry budget" below); the
// decision is taken from what the server said during the attempt, so it
// holds even when fn wrapped the error with %v, swallowed it, or returned
// the follow-on 25P02. fn's own errors
// roll back and come back unchanged, after one attempt, also when a context
// fn made for a statement ended and pgx closed the connection (a network or
// server failure before COMMIT instead runs the transaction again); a panic
// rolls back and goes on; a cancelled ctx never leaves a connection
// mid-transaction in the pool.
//
// COMMIT is sent together with a request for the transaction id, in one
// write: a fast-path call of pg_current_xact_id_if_assigned, which the
// server runs without parsing or planning and answers before it reads
// COMMIT, and COMMIT as a simple query. If the connection breaks before COMMIT's answer arrives, WithTx
// asks the server on another connection what became of that transaction
// (pg_xact_status): committed is success, aborted is retried, and anything
// else is [ErrCommitUnknown] — never a silent retry that could apply the
// work twice. This needs PostgreSQL 13 or later and a Beginner whose
// connection WithTx can reach (*pgxpool.Pool, *pgxpool.Conn, *pgx.Conn,
// or a [Router], which hands WithTx each attempt's pooled connection: a
// cluster.Cluster of a primary and replicas is one).
// On CockroachDB, YugabyteDB (recognised by what they report at connect)
// and PostgreSQL before 13, whose transaction ids cannot be asked about,
// COMMIT goes alone, as pgx sends it, and a lost answer is ErrCommitUnknown
// saying which server it was; retries work as on PostgreSQL.
// A READ ONLY transaction skips the transaction-id query: it can write
// nothing durable. A lost answer to its COMMIT is a success where COMMIT
// cannot fail: at READ COMMITTED or REPEATABLE READ, or SERIALIZABLE with
// Deferrable. A SERIALIZABLE READ ONLY transaction that is not DEFERRABLE
// can still fail with 40001 at COMMIT, so, as when the level is left to
// the server, it runs again rather than hand back reads the server may
// have rejected, and ends in ErrCommitUnknown when attempts are spent. A
// read-write transaction that had no transaction id (it wrote nothing, or
// only sent notifications, whose id is assigned while committing) has no
// outcome to ask about; WithTx runs it again, which is safe since nothing
// durable depended on it, so a notification it sent is delivered at least
// once. When attempts are spent that ends in ErrCommitUnknown.
//
// Cancelling ctx while fn runs rolls the transaction back. Once COMMIT is
// sent, cancelling ctx no longer abandons it: WithTx waits for the answer,
// at most two seconds past ctx's deadline, because giving up on the answer
// cannot stop the commit and would only turn a known outcome into an
// unknown one. A FATAL error during COMMIT (a terminated backend) is not
// taken as a refusal: the commit may have been durable before it, so the
// outcome is asked of the server.
//
// WithTx refuses a caller's *pgx.Conn inside a transaction the caller
// began ([ErrInvalid]): its COMMIT would end the caller's. A fn that ends
// the transaction itself (COMMIT or ROLLBACK through Exec) gets an error
// from its later calls, and WithTx returns one, sending no COMMIT. A fn
// that returns nil with rows open or a QueryRow not scanned gets no
// COMMIT either: the connection is closed and WithTx returns an error.
//
// Every statement WithTx sends reaches the tracer configured on the
// connection (otelpgx, tracelog), as with hand-written pgx: BEGIN with
// fn's first statement as a batch (TraceBatchStart, TraceBatchQuery for
// each, TraceBatchEnd), SAVEPOINT, RELEASE, ROLLBACK TO, ROLLBACK and
// COMMIT, whose trace also covers the transaction-id request sent with it.
// A tracer that is only a pgx.QueryTracer would not see a batch: there
// BEGIN goes alone, traced as a query.
//
// # Hot spots
//
// Once a statement of an attempt has lost to a serialization failure or a
// deadlock, the attempts that follow begin with SET LOCAL lock_timeout (20 ms, doubling
// with each conflict, at most 1 s), and a lock wait that runs out (55P03)
// runs the transaction again like a 40001. Transactions that take row
// locks in different orders then retry within milliseconds instead of
// waiting deadlock_timeout (1 s by default) for the server to find the
// deadlock. Like a 40001, such a 55P03 runs the whole attempt again even
// when a nested WithTx rolled it back to its savepoint and fn dropped the
// error; a 55P03 from the caller's own NOWAIT in that attempt is retried
// too, since the two cannot be told apart. A LockTimeout of the caller's
// own replaces the bound; Options.NoRetryLockTimeout turns it off.
//
// The calls of a transaction that has lost a conflict (at a statement or at
// COMMIT) then take turns in the process: the same Options.Name on the same
// Beginner, or without a Name the same fn (closures of one function literal
// are one; a helper that wraps its callers' functions in a literal of its
// own should set a Name). The call that lost runs its next attempt alone (it
// waits until no other attempt of that transaction runs, and none starts
// while it does), ahead of the first attempts of newer calls; so a call
// loses at most once to its own transaction's other calls in this process,
// and a caller that keeps losing is not overtaken. First attempts run at
// most a few at a time, under a limit that halves with each conflict and
// grows back as attempts succeed, and begin with the 20 ms lock bound
// (unless NoRetryLockTimeout or a LockTimeout of the caller's says
// otherwise), so that a first deadlock costs a retry rather than
// deadlock_timeout. A transaction whose limit has grown back to many is
// forgotten; until a transaction conflicts, WithTx pays one atomic load for
// all this. Waiting for a turn holds no connection and ends with ctx (its
// error is ctx's cause); a call whose COMMIT answer was lost gives its turn
// up while it asks the server. Calls in other processes do not take turns
// with these: their conflicts are retried and bounded as above. A
// RequiresNew call made inside another transaction takes no turn: it would
// wait holding its caller's connection, perhaps for the turn its caller
// holds. Options.NoRetryQueue turns turn-taking off.
//
// # Retry budget
//
// Without Options.Retry, a call retries with [retry.Default]'s waits (5 ms
// doubling to 500 ms, ±50%), and its budget depends on ctx. When ctx has a
// deadline, the deadline is the budget for conflicts (40001, 40P01, a
// bounded lock wait that ran out): the call retries them until the next
// wait would end after it, however many attempts that takes, and then
// returns an error matching retry.ErrExhausted that says so; if the
// deadline passes during an attempt or a wait for a turn, the error
// matches context.DeadlineExceeded and still reaches the last conflict
// (retry.SQLState finds it). A long deadline is taken at its word: a call
// given a day retries a conflict that never clears for a day. Other
// retries (a connection lost before COMMIT, a lost COMMIT that can run
// again) keep the count of retry.DefaultMaxAttempts, so that a statement
// that breaks the connection every time is not sent for the whole
// deadline, and so does a RequiresNew call inside another transaction,
// whose caller waits holding its locks. When ctx has no deadline, the
// call makes at most retry.DefaultMaxAttempts (10) attempts, about 1.5 s
// of waiting. A deadline says how long the caller will wait
// for the transaction: under contention, a count would give up on the
// calls that lost several times in a row, which are the unlucky ones, not
// the ones out of time. A wait for a turn (see "Hot spots") counts against
// the deadline, not as an attempt. A Policy given in Options.Retry is
// followed as it is, whether ctx has a deadline or not: retry.Default()
// still means 10 attempts, and MaxAttempts: -1 without a deadline means
// no bound but MaxElapsedTime.
//
// # Repositories: transactions in the context
//
// WithTx puts its transaction in the ctx it gives fn. [FromContext] finds
// it, and [Q] returns it or else the pool, so a repository method works the
// same inside a service's transaction and on its own.
//
// # Nesting
//
// WithTx called with a ctx that carries a transaction runs fn in a
// savepoint of it: released when fn succeeds, rolled back to when fn fails
// or panics (before the panic goes on, dropping the nested AfterCommit
// callbacks), and the outer transaction goes on. Only the outermost call
// retries: a serialization failure or deadlock inside a nested call is
// returned, and remembered, so that the outermost WithTx restarts
// everything, even if the outer fn drops the error and returns nil (when
// attempts are spent, the error matches retry.ErrExhausted). A nested call may not
// ask for more than the running transaction gives (a stronger isolation
// level, READ ONLY inside a read-write transaction): that is an error, not
// a silent downgrade. Timeouts and Retry of a nested call are those of the
// outermost call. A nested call reports TxStart (with Nested set) and TxEnd
// to its own Observer, or to the outermost call's if it has none, under its
// own Name or the outermost's.
//
// Options.RequiresNew instead runs fn in an independent transaction on
// another connection of db, committed or rolled back on its own: for work
// that must stand even if the caller's transaction rolls back (an audit
// record). It holds a second connection while the first is held, so a
// pool must be large enough for both, and the two transactions can block
// each other on row locks.
//
// # Errors
//
// Every input WithTx cannot run (a nil Beginner, a nil fn, impossible
// Options, a nested call asking for more than the running transaction
// gives) is refused before anything is sent with an error matching
// [ErrInvalid], which lists every problem with the Options at once. A lost
// COMMIT that cannot be settled matches [ErrCommitUnknown]; errors.As with
// a [*CommitUnknownError] gives the transaction id (when its answer
// arrived), the last status the server reported, and the cause.
//
// # After commit, observing, leaks
//
// [AfterCommit] registers work to run only once the outermost transaction
// has certainly committed. An [Observer] (see [NewSlogObserver]) receives
// start, retry, attempt-start, attempt-end, end and commit-resolution
// events, and with
// Options.LeakThreshold a report of transactions held open too long, with
// the stack that opened them. An observer implements only the event
// interfaces it wants ([TxEndObserver], [TxRetryObserver], ...); the
// convention every txkit package follows for events, data structs and
// log keys is described in the documentation of package
// [github.com/txkit/txkit]. [ObserverFrom] gives the transaction's
// Observer to packages that run statements in it (locks sends its
// row-lock events there).
package txn
