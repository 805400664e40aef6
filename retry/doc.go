// Package retry decides which database errors are worth another attempt and
// runs the attempts with jittered exponential backoff (backoff/v4 inside).
//
// PostgreSQL asks the client to run a transaction again when it aborts it
// with a serialization failure (SQLSTATE 40001, common at SERIALIZABLE and
// REPEATABLE READ) or a deadlock (40P01). [Retryable] recognizes both by
// SQLSTATE through errors.As, so it sees through any %w wrapping:
//
//	if retry.Retryable(err) { /* run the whole transaction again */ }
//
// [Do] runs a function under a [Policy]:
//
//	err := retry.Do(ctx, retry.Default(), func(ctx context.Context) error {
//		return work(ctx)
//	})
//
// The loop waits between attempts, never starts a wait that would end after
// ctx's deadline, and returns at once when ctx is cancelled. When it gives
// up on a retryable error, the error it returns matches [ErrExhausted] with
// errors.Is and still reaches the last *pgconn.PgError with errors.As.
//
// [Never] returns a policy of one attempt, for a caller that handles
// retryable errors itself; a nil fn is refused with an error matching
// [ErrInvalid].
//
// Most users do not call Do directly: txn.WithTx runs it around a whole
// transaction, from BEGIN, because PostgreSQL needs a fresh snapshot for a
// retry to mean anything.
package retry
