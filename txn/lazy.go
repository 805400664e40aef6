package txn

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/txkit/txkit/internal/txconn"
)

// BEGIN rides with fn's first statement. Where WithTx acquires the
// connection itself (from a *pgxpool.Pool or a Router, on PostgreSQL 13 or
// later), an attempt sends nothing until fn's first Exec (with arguments),
// Query or QueryRow, and that statement goes in one pgx batch behind BEGIN
// and the attempt's SET LOCAL statements (pgx's Batch.BeginTx): one round
// trip fewer per transaction, as PgJDBC sends BEGIN with its first query.
// PostgreSQL takes a transaction's snapshot at its first statement, not at
// BEGIN, so what fn sees is the same.
//
// Where the first call cannot carry BEGIN, BEGIN goes alone first, as pgx
// sends it: Begin (a pgx savepoint), CopyFrom, SendBatch, Prepare, Conn and
// LargeObjects; a statement with a pgx option other than a QueryRewriter
// among its arguments (pgx batches take no other); an Exec without
// arguments, which pgx sends as a simple query, unprepared (it may hold
// several statements, or COPY, and dynamic SQL must not fill the statement
// cache); a statement new to the connection in an attempt with SET LOCAL
// timeouts (see below); and every call on a connection whose pgx tracer
// does not see batches (it is not a pgx.BatchTracer, or it is pgx's
// multitracer holding a query tracer that is not), or whose query mode is
// QueryExecModeDescribeExec, which describes each statement in a round
// trip of its own ahead of the batch. A caller's own connection (a
// *pgx.Conn or *pgxpool.Conn passed to WithTx) always gets BEGIN alone: a
// batch pgx cannot finish building (an argument it cannot encode, or
// whose encoding panics) costs pgx the connection, which must not be the
// caller's.
//
// In the statement-caching modes (pgx's default) pgx prepares a statement
// new to the connection ahead of the batch, outside the transaction. If
// that fails (a syntax error, a standby whose sessions default to
// SERIALIZABLE), nothing has run: BEGIN then goes alone and the statement
// is sent again as usual, inside the transaction, where it gets the error
// it would have got. An argument pgx cannot encode is different: pgx
// closes the (pooled) connection to drop the BEGIN it had queued, so the
// statement gets pgx's error, every later call of fn fails, and WithTx
// returns fn's error without running it again. That prepare runs under the
// session's timeouts, not the attempt's SET LOCAL ones, and DDL holding one
// of the statement's tables makes it wait; so in an attempt with SET
// LOCALs (Options' timeouts, a hot transaction's bounded lock waits) a
// first statement carries BEGIN only if it has carried it on that
// connection before, which left it prepared (unless pgx's statement cache
// has since dropped it, after more distinct statements than it holds).
//
// A statement whose own ctx has ended before it is sent fails alone, as
// with pgx: BEGIN stays pending for the next one.
//
// A fn that sends no statement sends neither BEGIN nor COMMIT. If BEGIN
// fails, the statement that carried it gets BEGIN's error, and every later
// call gets it too, without sending anything: no statement of fn runs
// outside the transaction.

// lazyBegin is an attempt's BEGIN that has not been sent.
type lazyBegin struct {
	conn *pgx.Conn
	sql  string          // BEGIN and its SET LOCAL statements, "; "-separated
	ctx  context.Context // the attempt's, for Conn and LargeObjects, which take none
}

// canBeLazy reports whether an attempt on conn, a connection WithTx
// acquired, may defer its BEGIN: conn is outside a transaction, its
// server can settle a lost COMMIT (the servers that cannot are reached
// through a plain COMMIT path that is kept as pgx sends it), and its
// traits allow it.
func canBeLazy(conn *pgx.Conn) bool {
	pc := conn.PgConn()
	if pc.TxStatus() != 'I' || unresolvable(pc) != "" {
		return false
	}
	return traitsOf(conn).carry
}

// connTraits is what WithTx keeps of a connection, in its pgconn
// CustomData, to decide whether a statement can carry BEGIN.
type connTraits struct {
	tracer   pgx.QueryTracer // the connection's tracer, or nil (see queryTracer)
	carry    bool            // its tracer sees batches, and its mode is not DescribeExec
	prepares bool            // its mode prepares or describes a new statement ahead of a batch
	capacity int             // how many statements pgx's cache holds for it

	// known holds the first statements that carried BEGIN in an attempt
	// with SET LOCALs: prepared on this connection, as far as WithTx
	// knows. Forgotten all at once when it outgrows capacity.
	known map[string]struct{}
}

// traitsKey is where traitsOf keeps a connection's traits. The entry lives
// and dies with its connection.
const traitsKey = "github.com/txkit/txkit/txn.traits"

// traitsOf returns conn's traits, working them out on first use: pgx gives
// its configuration only through Conn.Config, which copies the whole of
// it, and a transaction should not pay for that.
func traitsOf(conn *pgx.Conn) *connTraits {
	data := conn.PgConn().CustomData()
	if t, ok := data[traitsKey].(*connTraits); ok {
		return t
	}
	cfg := conn.Config()
	t := &connTraits{tracer: cfg.Tracer,
		carry: cfg.DefaultQueryExecMode != pgx.QueryExecModeDescribeExec && seesBatches(cfg.Tracer)}
	switch cfg.DefaultQueryExecMode {
	case pgx.QueryExecModeCacheStatement:
		t.prepares, t.capacity = true, cfg.StatementCacheCapacity
	case pgx.QueryExecModeCacheDescribe:
		t.prepares, t.capacity = true, cfg.DescriptionCacheCapacity
	}
	if data != nil {
		data[traitsKey] = t // WithTx holds conn: no one else uses it now
	}
	return t
}

// seesBatches reports whether qt, a connection's tracer, sees a batched
// statement: it is nil, or a pgx.BatchTracer; pgx's multitracer is one
// whatever it holds, and passes batches only to the tracers in its
// BatchTracers, so there every query tracer must be among those too. A tracer of another kind that
// wraps tracers this way hides its query tracers' blindness.
func seesBatches(qt pgx.QueryTracer) bool {
	if qt == nil {
		return true
	}
	if mt, ok := qt.(*multitracer.Tracer); ok {
		for _, q := range mt.QueryTracers {
			if !slices.ContainsFunc(mt.BatchTracers, func(b pgx.BatchTracer) bool { return same(q, b) }) {
				return false
			}
		}
		return true
	}
	_, ok := qt.(pgx.BatchTracer)
	return ok
}

// same reports whether q and b are the same tracer. Values of a type that
// cannot be compared are never the same: seesBatches then errs on the
// side of sending BEGIN alone.
func same(q pgx.QueryTracer, b pgx.BatchTracer) bool {
	if t := reflect.TypeOf(q); t == nil || !t.Comparable() || t != reflect.TypeOf(b) {
		return false
	}
	return any(q) == any(b)
}

// knows reports whether sql can carry BEGIN in an attempt with SET LOCALs
// on a connection with traits t.
func (t *connTraits) knows(sql string) bool {
	if !t.prepares {
		return true
	}
	_, ok := t.known[sql]
	return ok
}

// learn records that sql is prepared on the connection.
func (t *connTraits) learn(sql string) {
	if !t.prepares {
		return
	}
	if t.known == nil || len(t.known) >= max(t.capacity, 1) {
		t.known = make(map[string]struct{})
	}
	t.known[sql] = struct{}{}
}

// carries reports whether a statement with args can carry BEGIN in a
// batch: it has no pgx option among its leading arguments but a
// QueryRewriter, the only one a batch takes.
func carries(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryRewriter:
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			return false
		default:
			return true
		}
	}
	return true
}

// beginError is BEGIN's failure, as a call after the one that carried it
// gets it.
type beginError struct{ err error }

func (e *beginError) Error() string { return "txn: the transaction did not begin: " + e.err.Error() }
func (e *beginError) Unwrap() error { return e.err }

// failBegin records that BEGIN failed with err. Statements after it get err
// wrapped in a beginError; the call that carried BEGIN gets err itself.
func (t *recordingTx) failBegin(err error) error {
	t.rec.record(err)
	t.beginErr = &beginError{err: err}
	if t.inner == nil {
		t.inner = closedTx(err)
	}
	return err
}

// closedTx is a pgx.Tx that refuses every call with pgx.ErrTxClosed.
func closedTx(err error) pgx.Tx {
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	return pgx.FailedBatchResults(&b, err).Tx()
}

// ready sends the pending BEGIN on its own, for a call that cannot carry
// it, and returns BEGIN's error if it failed, now or before.
func (t *recordingTx) ready(ctx context.Context) error {
	if t.beginErr != nil {
		return t.beginErr
	}
	lz := t.lazy
	if lz == nil {
		return nil
	}
	t.lazy = nil
	tx, err := beginConn(ctx, lz.conn, pgx.TxOptions{BeginQuery: lz.sql})
	if err != nil {
		return t.failBegin(err)
	}
	t.inner = tx
	return nil
}

// readyOrClose is ready for the calls that take no ctx and return no
// error (Conn, LargeObjects): BEGIN is sent with the attempt's ctx, its
// cancellation ignored and its time bounded (as a ROLLBACK's is), since
// the caller may use the connection with a ctx of its own; if BEGIN fails
// the connection is closed, so that nothing sent on it afterwards runs
// outside the transaction.
func (t *recordingTx) readyOrClose() {
	lz := t.lazy
	if lz == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(lz.ctx), rollbackTimeout)
	defer cancel()
	if t.ready(ctx) != nil {
		_ = lz.conn.Close(ctx)
	}
}

// notSent reports, for a call that is about to send a statement with its own
// ctx while BEGIN is pending, an error if ctx has already ended: the call
// fails alone, as pgx's would, and BEGIN stays pending.
func notSent(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("txn: statement not sent: %w", context.Cause(ctx))
}

// sendWithBegin sends BEGIN, its SET LOCAL statements and the statement
// sql in one batch, reads the answers to all but the statement, and returns
// the batch for the caller to read the statement's answer and close. It
// returns no batch and no error when BEGIN went alone instead (the batch
// failed before anything ran): the caller then sends the statement as
// usual.
func (t *recordingTx) sendWithBegin(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	lz := t.lazy
	t.lazy = nil
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, 2)}
	begin, sets, _ := strings.Cut(lz.sql, "; ")
	b.BeginTx(pgx.TxOptions{BeginQuery: begin})
	for sets != "" {
		var set string
		set, sets, _ = strings.Cut(sets, "; ")
		b.Queue(set)
	}
	b.Queue(sql, args...)
	br := lz.conn.SendBatch(ctx, b)
	t.inner = br.Tx()
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			if !lz.conn.IsClosed() && lz.conn.PgConn().TxStatus() == 'I' {
				// Nothing ran: pgx failed before BEGIN did, preparing a
				// statement new to the connection (which pgx does ahead of
				// the batch, outside the transaction, where a standby
				// defaulting to SERIALIZABLE refuses it) or encoding an
				// argument. Begin alone, and let the statement run as it
				// would have, inside the transaction.
				t.inner, t.lazy = nil, lz
				if err := t.ready(ctx); err != nil {
					return nil, err
				}
				return nil, nil
			}
			if encodeFailed(err) && lz.conn.IsClosed() {
				// pgx could not encode an argument after BEGIN was queued,
				// and closed the connection to drop it: nothing was sent,
				// and the error is fn's own, not a broken network to run
				// the transaction again for.
				t.clientBroke = true
			}
			return nil, t.failBegin(err)
		}
	}
	return br, nil
}

// encodeFailed reports whether err is pgx's failure to encode a batched
// statement's arguments: its ErrPreprocessingBatch at the build step. pgx
// gives the step only in the message; the prepare step, whose error is
// the server's or the network's, is a lost connection like any other.
// TestFirstStatementFailingBeforeBeginRunsInTheTransaction and
// TestTerminatedIdleConnectionIsRetriedAtBegin hold the two apart.
func encodeFailed(err error) bool {
	var pe pgx.ErrPreprocessingBatch
	return errors.As(err, &pe) && strings.HasPrefix(pe.Error(), "error preprocessing batch (build)")
}

// carriesFirst reports whether sql, fn's first statement, carries BEGIN
// rather than sending it alone ahead of itself.
func (t *recordingTx) carriesFirst(sql string, args []any) bool {
	if !carries(args) {
		return false
	}
	lz := t.lazy
	if !strings.Contains(lz.sql, "; ") {
		return true // no SET LOCAL for a prepare ahead of the batch to miss
	}
	tr := traitsOf(lz.conn)
	if tr.knows(sql) {
		return true
	}
	tr.learn(sql) // prepared now, inside the transaction, BEGIN going alone
	return false
}

// first settles BEGIN for fn's first statement, sql, while BEGIN is
// pending or has failed: it returns the batch in which the statement
// carried BEGIN, for the caller to read the statement's answer from, or no
// batch when the statement is to be sent as usual, BEGIN having gone alone
// (or, with an error, failed, or the statement's ctx having ended). carry
// is false for a statement that cannot carry BEGIN whatever its arguments.
func (t *recordingTx) first(ctx context.Context, sql string, args []any, carry bool) (pgx.BatchResults, error) {
	if t.beginErr == nil {
		if err := notSent(ctx); err != nil {
			return nil, err
		}
		if !carry || !t.carriesFirst(sql, args) {
			_ = t.ready(ctx)
		}
	}
	if t.beginErr != nil {
		return nil, t.beginErr
	}
	if t.lazy == nil {
		return nil, nil
	}
	return t.sendWithBegin(ctx, sql, args)
}

// execFirst is Exec while BEGIN is pending or has failed.
func (t *recordingTx) execFirst(ctx context.Context, sql string, args []any) (pgconn.CommandTag, error) {
	// pgx sends an Exec without arguments as a simple query, unprepared;
	// it may hold several statements, or COPY.
	br, err := t.first(ctx, sql, args, len(args) > 0)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	if br == nil {
		return t.Exec(ctx, sql, args...)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.rec.record(err)
	t.checkEnded()
	return tag, err
}

// queryFirst is Query while BEGIN is pending or has failed.
func (t *recordingTx) queryFirst(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
	br, err := t.first(ctx, sql, args, true)
	if err != nil {
		return errRows{err: err}, err
	}
	if br == nil {
		return t.Query(ctx, sql, args...)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		t.rec.record(err)
		return rows, err
	}
	return &recordingRows{Rows: rows, rec: t.rec, batch: br, tx: t}, nil
}

// queryRowFirst is QueryRow while BEGIN is pending or has failed.
func (t *recordingTx) queryRowFirst(ctx context.Context, sql string, args []any) pgx.Row {
	br, err := t.first(ctx, sql, args, true)
	if err != nil {
		return errRow{err: err}
	}
	if br == nil {
		return t.QueryRow(ctx, sql, args...)
	}
	return batchRow{inner: br.QueryRow(), batch: br, rec: t.rec, tx: t}
}

// batchRow is the row of a QueryRow that carried BEGIN: Scan reads it and
// closes the batch.
type batchRow struct {
	inner pgx.Row
	batch pgx.BatchResults
	rec   *recorder
	tx    *recordingTx
}

func (r batchRow) Scan(dest ...any) error {
	err := r.inner.Scan(dest...)
	if cerr := r.batch.Close(); err == nil {
		err = cerr
	}
	r.rec.record(err)
	r.tx.checkEnded()
	return err
}

// errRow is a row whose Scan returns err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errRows are rows that failed before any arrived, as pgx returns them
// with an error: closed, with err.
type errRows struct{ err error }

func (errRows) Close()                                       {}
func (r errRows) Err() error                                 { return r.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                          { return r.err }
func (r errRows) Values() ([]any, error)                     { return nil, r.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

func init() { txconn.Register(peekConn) }

// peekConn returns the connection under tx, a tx WithTx handed fn, without
// sending a pending BEGIN (see internal/txconn).
func peekConn(tx pgx.Tx) (*pgx.Conn, bool) {
	t, ok := tx.(*recordingTx)
	if !ok {
		return nil, false
	}
	if t.lazy != nil {
		return t.lazy.conn, true
	}
	if t.inner == nil {
		return nil, false
	}
	return t.inner.Conn(), true
}
