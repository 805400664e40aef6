package txn

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Beginner starts transactions. *pgxpool.Pool, *pgxpool.Conn and *pgx.Conn
// satisfy it; with those three, and with a [Router], WithTx also resolves
// a COMMIT whose answer was lost (see ErrCommitUnknown). Any other
// Beginner gets ErrCommitUnknown in that case.
type Beginner interface {
	BeginTx(ctx context.Context, txOptions pgx.TxOptions) (pgx.Tx, error)
}

// begun is a transaction WithTx started: pgx's tx, and when WithTx can
// reach it, the connection under it, which lets WithTx send COMMIT itself.
type begun struct {
	tx     pgx.Tx
	conn   *pgx.Conn     // nil for other Beginners
	pooled *pgxpool.Conn // the pool connection to hand back; nil otherwise

	lazy bool // BEGIN is not sent yet: it goes with fn's first statement (lazy.go)

	routed   *Routed         // a Router's connection; see finish
	position *commitPosition // read after COMMIT when the Router asks

	turn *queueEntry // the hot transaction whose turn the attempt holds; nil if none
}

// pending is the BEGIN with beginSQL that b has not sent, for the attempt
// with ctx: none (zero) when b began at once.
func (b *begun) pending(ctx context.Context, beginSQL string) lazyBegin {
	if !b.lazy {
		return lazyBegin{}
	}
	return lazyBegin{conn: b.conn, sql: beginSQL, ctx: ctx}
}

func (b *begun) done() {
	if b.pooled != nil {
		b.pooled.Release()
	}
}

// isNil reports whether db is nil or a typed nil of a known kind.
func isNil(db Beginner) bool {
	switch d := db.(type) {
	case nil:
		return true
	case *pgxpool.Pool:
		return d == nil
	case *pgxpool.Conn:
		return d == nil
	case *pgx.Conn:
		return d == nil
	}
	return false
}

// begin starts a transaction. A failure to connect, or a connection that
// breaks during BEGIN, is returned as a connLostError: no transaction began,
// so one on a fresh connection may (a pooled connection cut while idle, a
// server restarting).
func begin(ctx context.Context, db Beginner, beginSQL string, req RouteRequest) (begun, error) {
	b, err := beginOnce(ctx, db, beginSQL, req)
	if err == nil || ctx.Err() != nil || isConnLost(err) {
		return b, err
	}
	var pgErr *pgconn.PgError
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || (!errors.As(err, &pgErr) && brokenConn(db, err)) {
		return begun{}, &connLostError{when: "at BEGIN", err: err}
	}
	return begun{}, err
}

// brokenConn reports whether err came from a connection that is now closed.
func brokenConn(db Beginner, err error) bool {
	var c interface{ Timeout() bool } // net.Error
	if errors.As(err, &c) {
		return true
	}
	switch d := db.(type) {
	case *pgxpool.Conn:
		return d.Conn().IsClosed()
	case *pgx.Conn:
		return d.IsClosed()
	}
	return false
}

func beginOnce(ctx context.Context, db Beginner, beginSQL string, req RouteRequest) (begun, error) {
	txo := pgx.TxOptions{BeginQuery: beginSQL}
	switch d := db.(type) {
	case *pgxpool.Pool:
		c, err := d.Acquire(ctx)
		if err != nil {
			return begun{}, err
		}
		if canBeLazy(c.Conn()) {
			return begun{conn: c.Conn(), pooled: c, lazy: true}, nil
		}
		tx, err := beginAcquired(ctx, c.Conn(), txo)
		if err != nil {
			c.Release()
			return begun{}, err
		}
		return begun{tx: tx, conn: c.Conn(), pooled: c}, nil
	case *pgxpool.Conn:
		return beginOn(ctx, d.Conn(), txo)
	case *pgx.Conn:
		return beginOn(ctx, d, txo)
	case Router:
		return beginRouted(ctx, d, txo, req)
	}
	tx, err := db.BeginTx(ctx, txo)
	if err != nil {
		return begun{}, err
	}
	return begun{tx: tx}, nil
}

// beginAcquired begins on conn, a connection the attempt acquired (from
// the pool or a Router). A BEGIN that fails leaves no block open; one that
// also closed conn (broken, or ended by the server's FATAL: a backend
// terminated while idle in the pool answers BEGIN with 57P01) began no
// transaction, so its error says the connection was lost and another
// connection may run the transaction.
func beginAcquired(ctx context.Context, conn *pgx.Conn, txo pgx.TxOptions) (pgx.Tx, error) {
	tx, err := beginConn(ctx, conn, txo)
	if err != nil && conn.IsClosed() {
		err = &connLostError{when: "at BEGIN", err: err}
	}
	return tx, err
}

// beginOn begins on conn, the caller's own connection.
//
// BEGIN goes at once here, never with fn's first statement (see lazy.go):
// a batch pgx cannot finish building costs pgx the connection, which is
// the caller's. A connection inside a transaction the caller began is
// refused: BEGIN there only warns, and WithTx's COMMIT would end the
// caller's transaction.
func beginOn(ctx context.Context, conn *pgx.Conn, txo pgx.TxOptions) (begun, error) {
	if conn.PgConn().TxStatus() == 'T' {
		return begun{}, errCallersTx
	}
	tx, err := beginConn(ctx, conn, txo)
	if err != nil {
		return begun{}, err
	}
	return begun{tx: tx, conn: conn}, nil
}

// beginConn begins on conn; a BEGIN that fails leaves no block open.
func beginConn(ctx context.Context, conn *pgx.Conn, txo pgx.TxOptions) (pgx.Tx, error) {
	idle := conn.PgConn().TxStatus() == 'I'
	tx, err := conn.BeginTx(ctx, txo)
	if err != nil {
		endFailedBegin(ctx, conn, idle)
		return nil, err
	}
	return tx, nil
}

// endFailedBegin rolls back the transaction block a failed BEGIN left open.
// The begin query is BEGIN followed by SET LOCAL statements in one simple
// query: if the server refuses one of those, BEGIN has already run and the
// connection sits in a failed transaction, where its next statement would
// get 25P02. Only a block this call opened is ended (wasIdle): a
// transaction the caller had begun on its own connection is the caller's.
func endFailedBegin(ctx context.Context, conn *pgx.Conn, wasIdle bool) {
	if !wasIdle || conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := endContext(ctx)
	defer cancel()
	_, _ = conn.Exec(ctx, "rollback")
}
