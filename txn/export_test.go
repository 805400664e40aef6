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

// WALInsertLSNOID is the OID WithTx calls pg_current_wal_insert_lsn by.
const WALInsertLSNOID = walInsertLSNOID
