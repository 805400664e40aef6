package locks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/internal/txconn"
	"github.com/txkit/txkit/txn"
)

// Query runs query, a SELECT, with the locking clause of o appended (see
// [Options.Apply]), and returns its rows; errors are classified (see
// [Classify]), at Query or at Rows.Err.
//
// It runs in a transaction or not at all: db is used if it is a pgx.Tx or a
// connection inside a transaction; otherwise the transaction txn.WithTx put
// in ctx; otherwise Query returns [ErrNotInTx]. So a repository can pass its
// pool and join the caller's transaction:
//
//	rows, err := locks.Query(ctx, r.pool, locks.Options{Wait: locks.SkipLocked},
//		"SELECT id FROM jobs WHERE state = $1 ORDER BY id LIMIT 10", "ready")
//
// The locks are held until that transaction ends.
//
// The query is scanned as PostgreSQL reads it with standard_conforming_strings
// on, the default since PostgreSQL 9.1. With it off, a backslash in a plain
// string escapes the next character and moves where the string ends, so
// Query refuses to run, with an error matching [ErrInvalid], on a connection
// that does not report it on.
func Query(ctx context.Context, db txn.Querier, o Options, query string, args ...any) (pgx.Rows, error) {
	locking, err := o.Apply(query)
	if err != nil {
		return nil, err
	}
	q, err := inTx(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := checkStandardStrings(pgConnOf(q)); err != nil {
		return nil, err
	}
	return run(ctx, q, o, locking, args)
}

// pgConnOf returns the connection q runs on, or nil if it cannot tell.
// For a pgx.Tx this reads its connection without a statement: a tx that
// has ended is the caller's mistake, which pgx then reports
// (pgx.ErrTxClosed) when the statement is sent.
func pgConnOf(q txQuerier) *pgconn.PgConn {
	var c *pgx.Conn
	switch d := q.(type) {
	case pgx.Tx:
		c = txconn.Of(d) // reads only: a pending BEGIN rides with q's statement
	case *pgx.Conn:
		c = d
	case *pgxpool.Conn:
		c = d.Conn()
	}
	if c == nil {
		return nil
	}
	return c.PgConn()
}

// checkStandardStrings refuses a connection on which plain strings may not
// read as the scanner reads them. pgconn keeps the value the server last
// reported (standard_conforming_strings is reported on every change, SET
// LOCAL included): no round trip.
func checkStandardStrings(pc *pgconn.PgConn) error {
	if pc == nil {
		return invalid("cannot tell the connection's standard_conforming_strings; a query is only rewritten where it is on")
	}
	if v := pc.ParameterStatus("standard_conforming_strings"); v != "on" {
		return invalid("standard_conforming_strings is %q on this connection: with it off, backslashes in plain strings move where a string ends, so the query is not rewritten (SET standard_conforming_strings = on)", v)
	}
	return nil
}

// QueryRow is [Query] for one row, like pgx's QueryRow: a query that
// returns no row gives pgx.ErrNoRows at Scan, and errors, refusals
// included, are reported at Scan.
func QueryRow(ctx context.Context, db txn.Querier, o Options, query string, args ...any) pgx.Row {
	rows, err := Query(ctx, db, o, query, args...)
	return &row{rows: rows, err: err}
}

// txQuerier is a Querier known to be in a transaction. Every kind inTx
// accepts can also send a batch, which lets a per-call lock_timeout travel
// with the statement.
type txQuerier interface {
	txn.Querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// inTx returns what a locking read may run on: db if it is in a
// transaction, else ctx's transaction. A pool is never in one: each
// statement may go to another connection, in autocommit.
func inTx(ctx context.Context, db txn.Querier) (txQuerier, error) {
	if _, ok := db.(pgx.Tx); !ok {
		db = txn.Q(ctx, db)
	}
	switch d := db.(type) {
	case nil:
		return nil, ErrNotInTx
	case pgx.Tx:
		// A pgx.Tx is a transaction until it ends, and pgx refuses a
		// statement on an ended one (pgx.ErrTxClosed). Its connection's
		// status is not read: once the tx ended, a pool may have handed
		// that connection to another goroutine.
		return d, nil
	case *pgx.Conn:
		if d != nil && connInTx(d.PgConn()) {
			return d, nil
		}
	case *pgxpool.Conn:
		if d != nil && connInTx(d.Conn().PgConn()) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w (got %T)", ErrNotInTx, db)
}

// connInTx reports whether a connection is inside a transaction block,
// from the status the server sent with its last ReadyForQuery: no round
// trip. 'E' (a failed transaction) counts: the statement then fails with
// the server's own error.
func connInTx(pc *pgconn.PgConn) bool {
	s := pc.TxStatus()
	return s == 'T' || s == 'E'
}

// The statements that give one call its own lock_timeout. The previous value
// is kept in a custom setting, local to the transaction, so that the
// restore needs no answer from the first statement and all four go in one
// batch: one round trip, like the query alone. If the query fails, the
// transaction is aborted and the restore is moot; a savepoint rolled back to
// puts the setting back by itself.
//
// The call's bound only ever tightens: the server compares it with the
// lock_timeout the transaction has (txn.Options.LockTimeout, a SET LOCAL)
// and keeps the shorter, 0 being no bound. Which is shorter cannot be told
// without asking, and asking in SQL costs no round trip.
const (
	saveLockTimeout = "SELECT set_config('txkit.saved_lock_timeout', current_setting('lock_timeout'), true)"
	setLockTimeout  = "SELECT set_config('lock_timeout', CASE WHEN current_setting('lock_timeout')::interval = '0' " +
		"OR current_setting('lock_timeout')::interval > $1::text::interval THEN $1::text ELSE current_setting('lock_timeout') END, true)"
	restoreLockTimeout = "SELECT set_config('lock_timeout', current_setting('txkit.saved_lock_timeout'), true)"
)

// run sends query, bounded by the lock timeout o and ctx call for.
func run(ctx context.Context, q txQuerier, o Options, query string, args []any) (pgx.Rows, error) {
	timeout := o.lockTimeout(ctx)
	setting, bounded := pgtimeout.Setting(timeout)
	if !bounded {
		timeout = 0
	}
	ctx, w := startWait(ctx, o, timeout)
	if !bounded {
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			w.finish(err, 0)
			return nil, Classify(err)
		}
		return &lockRows{Rows: rows, wait: w}, nil
	}
	b := &pgx.Batch{}
	b.Queue(saveLockTimeout)
	b.Queue(setLockTimeout, setting)
	b.Queue(query, args...)
	b.Queue(restoreLockTimeout)
	br := q.SendBatch(ctx, b)
	for range 2 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			w.finish(err, 0)
			return nil, Classify(err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		w.finish(err, 0)
		return nil, Classify(err)
	}
	return &lockRows{Rows: rows, batch: br, wait: w}, nil
}

// A lock_timeout taken from ctx's deadline undercuts it by a margin, so
// that the server gives up first. When ctx expires before pgx has read the
// answer, pgx (with its default context handling) sets the socket's
// deadline to now and closes the connection, and the transaction is lost
// with it; so is a savepoint's, when ROLLBACK TO SAVEPOINT, sent on the
// same ctx, is still under way at the deadline. The margin has to cover
// what follows the computing of the bound: sending the batch (and, on a
// connection's first use of it, preparing its statements: a round trip),
// the server starting the wait, the answer's trip back, and the savepoint's
// rollback. Each is a millisecond on an idle machine and can take tens of
// milliseconds on a loaded one; a wait that gives up a little early costs
// the caller far less than a lost connection, so the margin is generous:
// a quarter of the time left, at most a second.
const (
	deadlineMarginDivisor = 4
	maxDeadlineMargin     = time.Second
)

// lockTimeout is the lock_timeout one call runs under, or 0 to leave the
// transaction's as it is. o.LockTimeout has been validated (0 to
// pgtimeout.Max). A deadline further away than pgtimeout.Max bounds
// nothing the server can hold, and is ignored.
func (o Options) lockTimeout(ctx context.Context) time.Duration {
	t := o.LockTimeout
	if o.Wait != Wait {
		return t
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return t
	}
	left := time.Until(deadline) // saturates: no overflow for any deadline
	d := left - min(left/deadlineMarginDivisor, maxDeadlineMargin)
	if d > 0 && d <= pgtimeout.Max && (t == 0 || d < t) {
		t = d
	}
	return t
}

// lockRows classifies errors, and when the query went in a batch, reads the
// rest of the batch (the lock_timeout restore) when the rows are done. It
// reports the end of the read to its observer, if any, when closed.
type lockRows struct {
	pgx.Rows
	batch  pgx.BatchResults // nil when the query went alone
	wait   *lockWait        // nil when nobody observes the read
	n      int              // rows read
	closed bool
	err    error // from finishing the batch
}

func (r *lockRows) Next() bool {
	if r.Rows.Next() {
		r.n++
		return true
	}
	r.Close()
	return false
}

func (r *lockRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	defer func() {
		err := r.Rows.Err()
		if err == nil {
			err = r.err
		}
		r.wait.finish(err, r.n)
	}()
	r.Rows.Close()
	if r.batch == nil {
		return
	}
	failed := r.Rows.Err() != nil
	if !failed {
		if _, err := r.batch.Exec(); err != nil {
			r.err = err
		}
	}
	// After a failed query Close repeats its error: already reported.
	if err := r.batch.Close(); err != nil && !failed && r.err == nil {
		r.err = err
	}
}

func (r *lockRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return Classify(err)
	}
	return Classify(r.err)
}

// row is QueryRow's pgx.Row, after pgx's own.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
