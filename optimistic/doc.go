// Package optimistic does versioned updates for repositories: a row carries
// an integer version, every write says which version it read, and a write
// whose version has moved on is refused rather than allowed to overwrite
// someone else's change.
//
//	var items = optimistic.Table{Name: pgx.Identifier{"items"}, Key: "id"} // version column "version"
//
//	v, err := items.Update(ctx, pool, id, readVersion, map[string]any{"stock": stock})
//	switch {
//	case errors.Is(err, optimistic.ErrConflict): // someone saved since we read: err is a *ConflictError
//	case errors.Is(err, optimistic.ErrNotFound): // the row is gone
//	}
//
// The version column is an integer declared NOT NULL DEFAULT 0 (any
// start will do):
//
//	ALTER TABLE items ADD COLUMN version bigint NOT NULL DEFAULT 0;
//
// A NULL version matches no version a writer can give, so a row holding
// one can never be written; writes to it fail with [ErrNullVersion], which
// names the column.
//
// # One round trip, three answers
//
// [Table.Update] and [Table.Delete] send one statement that writes the row
// if its version is the one read, and otherwise reads the version the row
// holds now. So a caller learns in one round trip whether the write
// happened (and the new version), whether it lost to another writer
// ([ErrConflict], with the current version in a [*ConflictError]), or
// whether the row no longer exists ([ErrNotFound]): stale, deleted and
// NULL-versioned ([ErrNullVersion]) are not confused, even when the other writer commits while this one waits
// for the row. Both run in the transaction txn.WithTx put in ctx, or on the
// pool given.
//
// # Load, modify, save, retry
//
// [Modify] is the loop around it: it reads the row into the caller's
// struct type, lets a function change it, saves it with a versioned update,
// and on a conflict starts again from a fresh read, waiting between
// attempts as a retry.Policy says. It needs no transaction, because the
// version check is what keeps a concurrent write from being lost: the
// package's tests have 32 goroutines increment one counter 100 times each
// through Modify and require exactly 3200 at the end.
//
// # Choosing optimistic, FOR UPDATE or SERIALIZABLE
//
// BenchmarkHotRow in tests/bench increments one row from 1, 8 and 32
// workers with each strategy in one run, and checks that no increment was
// lost; the README has its figures and the command that produces them.
//
// On a hot row what counts is how long each write keeps the row locked.
// The single UPDATE holds it for one statement. Modify on the pool holds it
// for one statement too (its read takes no lock), and pays for each lost
// race with a fresh read and a retry; the retries grow with the writers.
// FOR UPDATE holds the row from the SELECT across two more round trips to
// COMMIT: no retries, but a lower rate than the single UPDATE.
// SERIALIZABLE locks the row only at its UPDATE, and pays retries like
// Modify. On a busy machine a writer held up between its read and its
// write loses its race more often, and each loss costs a redo and a
// backoff wait; FOR UPDATE's writers queue instead.
//
// So:
//
//   - If the change can be written as SQL (SET n = n + 1, SET stock =
//     stock - $1 WHERE stock >= $1), write it so: fastest at every
//     concurrency, no retries, and nothing lost at READ COMMITTED, where
//     the server re-reads the row it waited for.
//   - Use optimistic versioning when the read and the write are close
//     together and writers rarely meet: it is the cheapest read-modify-write and needs no transaction.
//     It is also the only choice when they are far apart (a form shown to
//     a user and submitted later, a GET and a PUT), where no transaction
//     or lock may be held in between. Count ModifyOptions.OnConflict: a
//     rate approaching one retry per write says the row is too hot.
//   - Use FOR UPDATE (locks.QueryRow, locks.ByKey for several rows) when
//     many writers hit one row, when the time between read and write is
//     long or unpredictable, or when the transaction does work that should
//     not be redone: writers wait instead of retrying, so no work is redone
//     however hot the row gets.
//   - Use SERIALIZABLE for invariants that span rows no one can name or
//     lock up front (write skew, a rule over a query's result). On a single
//     row it costs what FOR UPDATE costs, plus retries: it is the tool for
//     correctness across rows, not for a hot counter.
package optimistic
