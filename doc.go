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
//     versioned updates built on the above.
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
package txkit
