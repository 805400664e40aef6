package txn

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithTx sends COMMIT through pgconn below pgx's query methods, which pgx
// does not trace,
// so it reports COMMIT to the connection's pgx.QueryTracer itself, as
// pgx's own Exec would: otelpgx, tracelog and other tracers see BEGIN,
// fn's statements and COMMIT. The transaction-id call sent ahead of COMMIT
// is part of COMMIT's trace.

// commitSQL is the statement WithTx sends to commit, as a tracer sees it:
// the text pgx's Tx.Commit sends and traces.
const commitSQL = "commit"

// queryTracer returns the pgx.QueryTracer configured on conn, or nil,
// kept with the connection's traits (see traitsOf).
func queryTracer(conn *pgx.Conn) pgx.QueryTracer { return traitsOf(conn).tracer }

// tracedCommit is commitOn (with the WAL position after COMMIT when
// pos is not nil, see Router) reported to conn's tracer as one COMMIT.
func tracedCommit(ctx context.Context, conn *pgx.Conn, pos *commitPosition) (xidAnswer, error) {
	qt := queryTracer(conn)
	if qt == nil {
		x, _, err := commitOn(ctx, conn.PgConn(), pos)
		return x, err
	}
	ctx = qt.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: commitSQL})
	x, tag, err := commitOn(ctx, conn.PgConn(), pos)
	qt.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{CommandTag: tag, Err: err})
	return x, err
}
