package pool

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// scrub replaces a *pgconn.ConnectError (a new connection failed: a
// rotated password, a server gone) with a [*ConnectError]: pgconn's
// carries the connection config, password included. Code given the
// *pgxpool.Pool itself gets pgx's errors unchanged.
func (p *Pool) scrub(err error) error {
	if err == nil {
		return nil
	}
	return scrubConnectError(err, p.secrets)
}

// errRows is the Rows of a Query that failed, with the scrubbed error.
type errRows struct {
	pgx.Rows
	err error
}

func (r errRows) Err() error { return r.err }

type scrubRow struct {
	row pgx.Row
	p   *Pool
}

func (r scrubRow) Scan(dest ...any) error { return r.p.scrub(r.row.Scan(dest...)) }

type scrubBatch struct {
	pgx.BatchResults
	p *Pool
}

func (b scrubBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, b.p.scrub(err)
}

func (b scrubBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		err = b.p.scrub(err)
		return errRows{Rows: rows, err: err}, err
	}
	return rows, nil
}

func (b scrubBatch) QueryRow() pgx.Row { return scrubRow{row: b.BatchResults.QueryRow(), p: b.p} }

func (b scrubBatch) Close() error { return b.p.scrub(b.BatchResults.Close()) }
