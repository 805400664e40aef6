package txn

import (
	"context"
	"runtime"
	"sync"
	"weak"

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

// tracers caches each connection's query tracer. pgx gives it only through
// Conn.Config, which copies the whole configuration; a commit should not
// pay for that. The keys are weak, and an entry goes when its connection
// is collected.
var tracers = struct {
	sync.RWMutex
	m map[weak.Pointer[pgx.Conn]]pgx.QueryTracer
}{m: map[weak.Pointer[pgx.Conn]]pgx.QueryTracer{}}

// queryTracer returns the pgx.QueryTracer configured on conn, or nil.
func queryTracer(conn *pgx.Conn) pgx.QueryTracer {
	key := weak.Make(conn)
	tracers.RLock()
	qt, ok := tracers.m[key]
	tracers.RUnlock()
	if ok {
		return qt
	}
	qt = conn.Config().Tracer
	tracers.Lock()
	if _, ok := tracers.m[key]; !ok {
		tracers.m[key] = qt
		runtime.AddCleanup(conn, forgetTracer, key)
	}
	tracers.Unlock()
	return qt
}

func forgetTracer(key weak.Pointer[pgx.Conn]) {
	tracers.Lock()
	delete(tracers.m, key)
	tracers.Unlock()
}

// tracedCommit is sendCommitAndXID (with the WAL position after it when
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
