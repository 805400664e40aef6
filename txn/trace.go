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

// tracerKey is where queryTracer keeps a connection's query tracer in
// the connection's pgconn CustomData. pgx gives the tracer only through
// Conn.Config, which copies the whole configuration; a commit should not
// pay for that. The entry lives and dies with its connection.
const tracerKey = "github.com/txkit/txkit/txn.queryTracer"

// queryTracer returns the pgx.QueryTracer configured on conn, or nil.
func queryTracer(conn *pgx.Conn) pgx.QueryTracer {
	data := conn.PgConn().CustomData()
	if v, ok := data[tracerKey]; ok {
		qt, _ := v.(pgx.QueryTracer)
		return qt
	}
	qt := conn.Config().Tracer
	if data != nil {
		data[tracerKey] = qt // WithTx holds conn: no one else uses it now
	}
	return qt
}

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
