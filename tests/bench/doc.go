// Package bench holds benchmarks that compare txkit's concurrency-control
// strategies with each other and with raw pgx, on the same workload in one
// run, so that the figures can be compared with each other.
//
// BenchmarkHotRow increments one counter row from 1, 8 and 32 workers with:
//
//   - atomic: UPDATE n = n + 1 with raw pgx, one statement in autocommit:
//     the physical limit of a hot row, and no read-modify-write at all;
//   - forupdate-pgx: BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT with raw pgx;
//   - forupdate: the same through txn.WithTx and locks.QueryRow;
//   - optimistic: optimistic.Modify on the pool, retrying conflicts;
//   - serializable: read and write in a SERIALIZABLE txn.WithTx, retrying
//     serialization failures.
//
// Every run checks that the counter ends at exactly the number of
// increments made. Run it with:
//
//	TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//		go test -run '^$' -bench HotRow -benchtime 2s ./tests/bench/
package bench
