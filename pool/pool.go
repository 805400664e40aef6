package pool

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool is a pgxpool.Pool opened by [Open], with an acquire timeout, leak
// reports and a bounded [Pool.Close]. It implements txn.Beginner and
// txn.Querier; [Pool.Pgx] gives the *pgxpool.Pool itself to code that needs
// one, and the acquire timeout and leak reports apply there too.
type Pool struct {
	pgx     *pgxpool.Pool
	t       *tracker
	log     *slog.Logger
	config  Config
	limits  *Limits
	secrets []string // passwords known at Open, scrubbed from error text

	stopBackground, backgroundDone chan struct{}

	closeOnce sync.Once
	closeDone chan struct{} // closed when the first Close has finished
	closeErr  error
}

// Pgx returns the underlying *pgxpool.Pool, for code that takes one (txn's
// COMMIT resolution works best on it, sqlc, otelpgx). Do not call its
// Close; call [Pool.Close].
func (p *Pool) Pgx() *pgxpool.Pool { return p.pgx }

// Config returns what the pool runs with. It holds no secret.
func (p *Pool) Config() Config { return p.config }

// Limits returns the server's connection limits as read by Open, and false
// when Open did not read them (lazy open).
func (p *Pool) Limits() (Limits, bool) {
	if p.limits == nil {
		return Limits{}, false
	}
	return *p.limits, true
}

// Held lists the connections acquired and not yet released, oldest first.
func (p *Pool) Held() []Holder { return p.t.holders() }

// Stat returns pgxpool's statistics.
func (p *Pool) Stat() *pgxpool.Stat { return p.pgx.Stat() }

// Acquire takes a connection; Release it when done.
func (p *Pool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := p.pgx.Acquire(ctx)
	return c, p.scrub(err)
}

// AcquireFunc acquires a connection, calls f with it and releases it.
func (p *Pool) AcquireFunc(ctx context.Context, f func(*pgxpool.Conn) error) error {
	return p.scrub(p.pgx.AcquireFunc(ctx, f))
}

// Begin starts a transaction on a connection of the pool.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := p.pgx.Begin(ctx)
	return tx, p.scrub(err)
}

// BeginTx starts a transaction with o on a connection of the pool.
func (p *Pool) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	tx, err := p.pgx.BeginTx(ctx, o)
	return tx, p.scrub(err)
}

// Exec runs sql on a connection of the pool.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.pgx.Exec(ctx, sql, args...)
	return tag, p.scrub(err)
}

// Query runs sql on a connection held until the rows are closed.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := p.pgx.Query(ctx, sql, args...)
	if err != nil {
		err = p.scrub(err)
		return errRows{Rows: rows, err: err}, err
	}
	return rows, nil
}

// QueryRow runs sql on a connection held until Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return scrubRow{row: p.pgx.QueryRow(ctx, sql, args...), p: p}
}

// SendBatch sends b on a connection held until the results are closed.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return scrubBatch{BatchResults: p.pgx.SendBatch(ctx, b), p: p}
}

// CopyFrom runs COPY FROM on a connection of the pool.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	n, err := p.pgx.CopyFrom(ctx, table, columns, src)
	return n, p.scrub(err)
}

// Ping checks that a connection can be had and answers.
func (p *Pool) Ping(ctx context.Context) error { return p.scrub(p.pgx.Ping(ctx)) }

// Reset closes every idle connection now and every held one when it is
// released, leaving the pool open.
func (p *Pool) Reset() { p.pgx.Reset() }
