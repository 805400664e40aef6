// Package isolation names PostgreSQL's transaction isolation levels and says
// what each one protects you from, so that choosing a level is a decision
// made from facts rather than folklore.
//
// A [Level] comes from configuration through [Parse] (or
// [Level.UnmarshalText]) and goes to pgx through [Level.TxIsoLevel]:
//
//	level, err := isolation.Parse(os.Getenv("TX_ISOLATION")) // "repeatable read"
//	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: level.TxIsoLevel()})
//
// The zero Level, [Default], sends no level and lets the server choose.
//
// # What each level prevents in PostgreSQL
//
// [Level.Prevents] answers for one [Phenomenon]; [Phenomena] lists them all.
// PostgreSQL prevents more than the SQL standard requires: its REPEATABLE
// READ is snapshot isolation, so only write skew and other serialization
// anomalies are left for SERIALIZABLE to catch.
//
//	phenomenon             READ COMMITTED  REPEATABLE READ  SERIALIZABLE
//	dirty read             prevented       prevented        prevented
//	non-repeatable read    allowed         prevented        prevented
//	phantom read           allowed         prevented        prevented
//	lost update            allowed         prevented        prevented
//	read skew              allowed         prevented        prevented
//	write skew             allowed         allowed          prevented
//	serialization anomaly  allowed         allowed          prevented
//
// The phenomena, in one line each:
//
//   - [DirtyRead]: seeing another transaction's uncommitted write.
//   - [NonRepeatableRead]: reading a row twice and getting two values.
//   - [PhantomRead]: running a query twice and getting a different set of rows.
//   - [LostUpdate]: two read-modify-writes of one value; one write is lost.
//   - [ReadSkew]: reading related rows at different moments, seeing a state
//     that never existed (a transfer half done).
//   - [WriteSkew]: two transactions check one condition, each writes a
//     different row, and together they break it.
//   - [SerializationAnomaly]: a committed result no serial order could give.
//
// "Prevented" at REPEATABLE READ and SERIALIZABLE often means the server
// aborts one transaction with a serialization failure (SQLSTATE 40001)
// rather than letting the anomaly through; the transaction must then be
// retried from the start. The package's tests show every cell of the table
// happening, or not, on a real server.
//
// READ UNCOMMITTED is accepted by PostgreSQL but runs as READ COMMITTED, and
// dirty reads never happen; [Parse] therefore maps "read uncommitted" to
// [ReadCommitted]. [Default] is answered as [ReadCommitted] by
// [Level.Prevents] and [Level.Stronger], which assumes the server's
// default_transaction_isolation was left at read committed.
package isolation
