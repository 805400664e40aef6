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
	return beginWith(ctx, db, beginSQL, false)
}

// BeginAloneWith is BeginWith where BEGIN goes alone, as it does ahead of
// a first call that cannot carry it (see lazy.go).
func BeginAloneWith(ctx context.Context, db Beginner, beginSQL string) error {
	return beginWith(ctx, db, beginSQL, true)
}

// beginWith begins with beginSQL and rolls back, as an attempt whose fn
// runs "SELECT 1" (or, alone, first calls Begin) would.
func beginWith(ctx context.Context, db Beginner, beginSQL string, alone bool) error {
	b, err := begin(ctx, db, beginSQL, RouteRequest{})
	if err != nil {
		return err
	}
	defer b.done()
	if b.lazy {
		st, _ := newState(ctx, nil, b.pending(ctx, beginSQL), &Options{})
		if alone {
			err = st.txv.ready(ctx)
		} else {
			_, err = st.tx.Exec(ctx, "SELECT 1")
		}
		b.tx = st.txv.inner
	}
	rollback(ctx, b.tx)
	return err
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

// AttemptWith runs fn as an attempt that begins with beginSQL would, BEGIN
// riding with fn's first statement where it can, and rolls back.
func AttemptWith(ctx context.Context, db Beginner, beginSQL string, fn func(context.Context, pgx.Tx) error) error {
	b, err := begin(ctx, db, beginSQL, RouteRequest{})
	if err != nil {
		return err
	}
	defer b.done()
	st, fnCtx := newState(ctx, b.tx, b.pending(ctx, beginSQL), &Options{})
	err = fn(fnCtx, st.tx)
	rollback(ctx, st.txv.inner)
	return err
}
