package txn

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/retry"
)

// recorder keeps the first error the server sent during an attempt that
// calls for a retry under the attempt's policy (40001, 40P01). Such an error
// means the attempt must run again from BEGIN, whatever fn did with it
// afterwards: wrapped it with %v, swallowed it, returned the follow-on 25P02
// (in_failed_sql_transaction), or dropped the error of a nested WithTx that
// rolled back to its savepoint, after which COMMIT would succeed without
// the work the server refused.
type recorder struct {
	policy *retry.Policy

	mu    sync.Mutex
	first *pgconn.PgError
}

func (r *recorder) record(err error) {
	if err == nil {
		return
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !r.policy.Retryable(pgErr) {
		return
	}
	r.mu.Lock()
	if r.first == nil {
		r.first = pgErr
	}
	r.mu.Unlock()
}

// get returns the first retryable error of the attempt, or nil.
func (r *recorder) get() *pgconn.PgError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// recordingTx is the pgx.Tx handed to fn. It delegates every call to pgx's
// transaction and records server errors on the way back. When managed, its
// Commit and Rollback refuse with ErrManaged: WithTx ends the transaction.
type recordingTx struct {
	inner   pgx.Tx // nil while BEGIN is pending (see lazy.go)
	rec     *recorder
	managed bool

	lazy     *lazyBegin // the BEGIN not yet sent; nil once sent, or if sent by begin
	beginErr error      // set when BEGIN failed: every call gets it

	clientBroke bool // pgx closed the connection over fn's own error (lazy.go)
}

var _ pgx.Tx = (*recordingTx)(nil)

// Begin starts a pgx savepoint; its statements are recorded too, and it is
// the caller's to commit or roll back.
func (t *recordingTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	sp, err := t.inner.Begin(ctx)
	t.rec.record(err)
	if err != nil {
		return nil, err
	}
	return &recordingTx{inner: sp, rec: t.rec}, nil
}

func (t *recordingTx) Commit(ctx context.Context) error {
	if t.managed {
		return ErrManaged
	}
	err := t.inner.Commit(ctx)
	t.rec.record(err)
	return err
}

func (t *recordingTx) Rollback(ctx context.Context) error {
	if t.managed {
		return ErrManaged
	}
	err := t.inner.Rollback(ctx)
	t.rec.record(err)
	return err
}

func (t *recordingTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.ready(ctx); err != nil {
		return 0, err
	}
	n, err := t.inner.CopyFrom(ctx, table, cols, src)
	t.rec.record(err)
	return n, err
}

func (t *recordingTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.ready(ctx); err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return &recordingBatch{inner: t.inner.SendBatch(ctx, b), rec: t.rec, tx: t}
}

// LargeObjects sends a pending BEGIN first, with the attempt's ctx; see
// readyOrClose.
func (t *recordingTx) LargeObjects() pgx.LargeObjects {
	t.readyOrClose()
	return t.inner.LargeObjects()
}

func (t *recordingTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	sd, err := t.inner.Prepare(ctx, name, sql)
	t.rec.record(err)
	return sd, err
}

func (t *recordingTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.inner == nil || t.beginErr != nil {
		return t.execFirst(ctx, sql, args)
	}
	tag, err := t.inner.Exec(ctx, sql, args...)
	t.rec.record(err)
	t.checkEnded()
	return tag, err
}

// checkEnded notices, after an Exec on the transaction WithTx manages,
// that fn ended it itself with COMMIT or ROLLBACK sent as a statement:
// its later calls then fail instead of running outside any transaction,
// and WithTx sends no COMMIT of its own.
func (t *recordingTx) checkEnded() {
	if !t.managed || t.beginErr != nil {
		return
	}
	if c := t.inner.Conn(); c != nil && !c.IsClosed() && c.PgConn().TxStatus() == 'I' {
		t.beginErr = errEnded
	}
}

func (t *recordingTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.inner == nil || t.beginErr != nil {
		return t.queryFirst(ctx, sql, args)
	}
	rows, err := t.inner.Query(ctx, sql, args...)
	t.rec.record(err)
	if err != nil {
		return rows, err
	}
	return &recordingRows{Rows: rows, rec: t.rec, tx: t}, nil
}

func (t *recordingTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.inner == nil || t.beginErr != nil {
		return t.queryRowFirst(ctx, sql, args)
	}
	return recordingRow{inner: t.inner.QueryRow(ctx, sql, args...), rec: t.rec, tx: t}
}

// Conn sends a pending BEGIN first, with the attempt's ctx, since what
// the caller sends on the connection must run in the transaction; see
// readyOrClose.
func (t *recordingTx) Conn() *pgx.Conn {
	lz := t.lazy
	t.readyOrClose()
	if c := t.inner.Conn(); c != nil || lz == nil {
		return c
	}
	return lz.conn // BEGIN failed: the connection, closed
}

// recordingRows records the error that ends a result set; the server often
// reports a serialization failure there rather than at Query. Rows of a
// statement that carried BEGIN (see lazy.go) also close their batch when
// they end, as pgx's rows end their query.
type recordingRows struct {
	pgx.Rows
	rec *recorder

	batch    pgx.BatchResults // the batch the rows came in; nil if none
	batchErr error            // the batch's Close error

	tx *recordingTx // the transaction the rows came from, for checkEnded
}

func (r *recordingRows) Close() {
	r.Rows.Close()
	r.endBatch()
	r.rec.record(r.Err())
	r.ended()
}

// ended tells the rows' transaction that a statement has ended (see
// checkEnded).
func (r *recordingRows) ended() {
	if r.tx != nil {
		r.tx.checkEnded()
	}
}

func (r *recordingRows) Err() error {
	err := r.Rows.Err()
	if err == nil {
		err = r.batchErr
	}
	r.rec.record(err)
	return err
}

func (r *recordingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.endBatch()
	r.rec.record(r.Err())
	r.ended()
	return false
}

// endBatch closes the rows' batch, once, after the rows ended.
func (r *recordingRows) endBatch() {
	if r.batch == nil {
		return
	}
	r.batchErr = r.batch.Close()
	r.batch = nil
}

type recordingRow struct {
	inner pgx.Row
	rec   *recorder
	tx    *recordingTx // for checkEnded; nil for a batch's row
}

func (r recordingRow) Scan(dest ...any) error {
	err := r.inner.Scan(dest...)
	r.rec.record(err)
	if r.tx != nil {
		r.tx.checkEnded()
	}
	return err
}

type recordingBatch struct {
	inner pgx.BatchResults
	rec   *recorder
	tx    *recordingTx // for checkEnded
}

func (b *recordingBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.inner.Exec()
	b.rec.record(err)
	return tag, err
}

func (b *recordingBatch) Query() (pgx.Rows, error) {
	rows, err := b.inner.Query()
	b.rec.record(err)
	if err != nil {
		return rows, err
	}
	return &recordingRows{Rows: rows, rec: b.rec}, nil
}

func (b *recordingBatch) QueryRow() pgx.Row {
	return recordingRow{inner: b.inner.QueryRow(), rec: b.rec}
}

func (b *recordingBatch) Close() error {
	err := b.inner.Close()
	b.rec.record(err)
	if b.tx != nil {
		b.tx.checkEnded()
	}
	return err
}

func (b *recordingBatch) Tx() pgx.Tx { return b.inner.Tx() }
