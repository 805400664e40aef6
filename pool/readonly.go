package pool

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// readOnlyReset resets the pool when a statement fails with 25006
// (read_only_sql_transaction) on a connection whose server is read-only by
// default: a failover left the pool's connections on a server that is now
// a standby (or was demoted), and new connections reach the new primary.
// A 25006 from a transaction the caller began READ ONLY is left alone.
//
// The server reports in_hot_standby and default_transaction_read_only to
// the client itself (PostgreSQL 14+), so telling the two apart costs no
// round trip.
type readOnlyReset struct {
	pool      atomic.Pointer[pgxpool.Pool]
	log       *slog.Logger
	lastReset atomic.Int64 // unix nanoseconds
}

// minResetGap keeps a burst of failing statements from resetting the pool
// over and over.
const minResetGap = time.Second

func (r *readOnlyReset) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (r *readOnlyReset) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	r.check(ctx, conn, data.Err)
}

// readOnlyReset sees batched statements too: txn.WithTx sends a
// transaction's first statement in a batch with its BEGIN, and in the
// pool's multitracer a tracer that did not see batches would keep WithTx
// from doing so.
var _ pgx.BatchTracer = (*readOnlyReset)(nil)

func (r *readOnlyReset) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *readOnlyReset) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	r.check(ctx, conn, data.Err)
}

func (r *readOnlyReset) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// check resets the pool if err, a statement's, is a 25006 from a server
// that is read-only by default.
func (r *readOnlyReset) check(ctx context.Context, conn *pgx.Conn, err error) {
	if err == nil || !isReadOnlyError(err) {
		return
	}
	// TraceQueryEnd runs on the goroutine that ran the query, so the
	// connection's reported parameters may be read here.
	pc := conn.PgConn()
	standby := pc.ParameterStatus("in_hot_standby") == "on"
	readOnly := pc.ParameterStatus("default_transaction_read_only") == "on"
	if !standby && !readOnly {
		return
	}
	p := r.pool.Load()
	if p == nil {
		return
	}
	now := time.Now().UnixNano()
	last := r.lastReset.Load()
	if now-last < int64(minResetGap) || !r.lastReset.CompareAndSwap(last, now) {
		return
	}
	r.log.LogAttrs(ctx, slog.LevelWarn, "pool: a statement failed with 25006 on a read-only server; resetting the pool so new connections reach the primary",
		slog.Bool("in_hot_standby", standby), slog.Bool("default_transaction_read_only", readOnly), slog.Uint64("pid", uint64(pc.PID())))
	p.Reset()
}

func isReadOnlyError(err error) bool {
	var s interface{ SQLState() string }
	return errors.As(err, &s) && s.SQLState() == pgerrcode.ReadOnlySQLTransaction
}
