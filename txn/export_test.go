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
	b, err := begin(ctx, db, beginSQL)
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
