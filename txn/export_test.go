package txn

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BeginWith starts and rolls back a transaction on db with beginSQL as
// WithTx would, for tests of a BEGIN the server refuses: Options that pass
// validation never make one.
func BeginWith(ctx context.Context, db Beginner, beginSQL string) error {
	b, err := begin(ctx, db, beginSQL, RouteRequest{})
	if err != nil {
		return err
	}
	defer b.done()
	rollback(ctx, b.tx)
	return nil
}

// TracerLookupAllocs is how many allocations finding conn's query tracer
// costs once it has been found before.
func TracerLookupAllocs(conn *pgx.Conn) float64 {
	queryTracer(conn)
	return testing.AllocsPerRun(100, func() { queryTracer(conn) })
}

// XIDRequestWire is the transaction-id request as WithTx writes it ahead of
// COMMIT on PostgreSQL 13 and later: the fast-path call's message bytes.
func XIDRequestWire() string {
	b, err := xidCall.Encode(nil)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// XactIDIfAssignedOID is the OID WithTx calls pg_current_xact_id_if_assigned by.
const XactIDIfAssignedOID = xactIDIfAssignedOID

// QueueWaiting is how many attempts of the transaction named name on db
// wait for their turn (see queue.go); -1 when the transaction is not hot.
func QueueWaiting(db Beginner, name string) int {
	queues.mu.Lock()
	defer queues.mu.Unlock()
	e := queues.m[queueKey{db: beginnerKey(db), name: name}]
	if e == nil {
		return -1
	}
	return len(e.waiting)
}

// QueueRunning is how many attempts of the transaction named name on db
// hold a turn; -1 when the transaction is not hot.
func QueueRunning(db Beginner, name string) int {
	queues.mu.Lock()
	defer queues.mu.Unlock()
	e := queues.m[queueKey{db: beginnerKey(db), name: name}]
	if e == nil {
		return -1
	}
	return e.running
}

// WALInsertLSNOID is the OID WithTx calls pg_current_wal_insert_lsn by.
const WALInsertLSNOID = walInsertLSNOID
