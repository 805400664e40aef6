package optimistic

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/txn"
)

// DefaultVersion is the version column a Table uses when it names none.
const DefaultVersion = "version"

// Table names a table whose rows carry a version: an integer column that
// every write checks and increments. A Table is a value; declare one per
// repository.
//
//	var items = optimistic.Table{Name: pgx.Identifier{"items"}, Key: "id"}
type Table struct {
	// Name is the table: {"items"} or {"shop", "items"}. Required.
	Name pgx.Identifier
	// Key is a unique column, normally the primary key. Required.
	Key string
	// Version is the integer version column; empty means "version". It
	// should be declared NOT NULL DEFAULT 0 (or another start): a row
	// whose version is NULL cannot be written, and the write says so with
	// an error matching [ErrNullVersion].
	Version string
}

// quoted is a Table's names, validated and quoted.
type quoted struct {
	table, key, version string
}

func (t Table) quote() (quoted, error) {
	var q quoted
	var err error
	if q.table, err = names.Table("Table.Name", t.Name); err != nil {
		return q, err
	}
	if q.key, err = names.Quote("Table.Key", t.Key); err != nil {
		return q, err
	}
	v := t.Version
	if v == "" {
		v = DefaultVersion
	}
	if q.version, err = names.Quote("Table.Version", v); err != nil {
		return q, err
	}
	if q.key == q.version {
		return q, invalid("Table.Key and Table.Version are the same column %s", q.key)
	}
	return q, nil
}

// Update writes set (column name to value) into the row with key if its
// version is still version, and increments the version; it returns the new
// version. If the row has moved on, it returns a [*ConflictError] (matching
// [ErrConflict]) with the version the row holds now; if there is no such
// row, an error matching [ErrNotFound]; if the row's version is NULL, an
// error matching [ErrNullVersion]. One statement, one round trip, either
// way.
//
// Update runs on the transaction in ctx if there is one (txn.Q), else on
// db. Column names are quoted; values go as parameters. set may be empty:
// the version alone is incremented, which marks a change to something the
// row stands for (an aggregate's children).
//
// Under READ COMMITTED a row that a concurrent transaction updated, or
// deleted, while Update waited for it is reported as it is after that
// transaction: conflict with its new version, or not found. Under
// REPEATABLE READ and SERIALIZABLE the server reports that case as a
// serialization failure (40001) instead, for txn.WithTx to retry. A write
// that changed nothing leaves the row locked until ctx's transaction ends
// (at once, on the pool): FOR KEY SHARE, which blocks only deletes and key
// changes; or, in the READ COMMITTED case above, locked as for the write
// itself, since PostgreSQL keeps the lock an UPDATE or DELETE that waited
// takes on the row's newest version even when that version no longer
// matches.
func (t Table) Update(ctx context.Context, db txn.Querier, key any, version int64, set map[string]any) (int64, error) {
	q, err := t.quote()
	if err != nil {
		return 0, err
	}
	query, args, err := q.updateSQL(key, version, set)
	if err != nil {
		return 0, err
	}
	conn, err := querier(ctx, db)
	if err != nil {
		return 0, err
	}
	var updated, current *int64
	var found bool
	if err := conn.QueryRow(ctx, query, args...).Scan(&updated, &current, &found); err != nil {
		return 0, err
	}
	if updated != nil {
		return *updated, nil
	}
	return 0, t.failed(q, key, version, found, current)
}

// Delete deletes the row with key if its version is still version, with
// the same answers as [Table.Update]: nil, a [*ConflictError], or an error
// matching [ErrNotFound] or [ErrNullVersion].
func (t Table) Delete(ctx context.Context, db txn.Querier, key any, version int64) error {
	q, err := t.quote()
	if err != nil {
		return err
	}
	conn, err := querier(ctx, db)
	if err != nil {
		return err
	}
	var deleted, found bool
	var current *int64
	if err := conn.QueryRow(ctx, q.deleteSQL(), key, version).Scan(&deleted, &current, &found); err != nil {
		return err
	}
	if deleted {
		return nil
	}
	return t.failed(q, key, version, found, current)
}

// querier is the transaction in ctx, else db; an error matching ErrInvalid
// if that is nil, or a nil pointer in a Querier (a *pgxpool.Pool or
// *pgx.Conn variable never assigned), which would panic at the first
// statement.
func querier(ctx context.Context, db txn.Querier) (txn.Querier, error) {
	conn := txn.Q(ctx, db)
	if isNil(conn) {
		return nil, invalid("nil db and no transaction in ctx")
	}
	return conn, nil
}

func isNil(db txn.Querier) bool {
	if db == nil {
		return true
	}
	switch v := reflect.ValueOf(db); v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// failed is the error of a versioned write that changed nothing: not found
// if the row does not exist, a NULL version if it exists (found) with
// current NULL, else a conflict. found and current come from the write's
// own statement (see updateSQL), which reads the row as the write left it.
func (t Table) failed(q quoted, key any, expected int64, found bool, current *int64) error {
	switch {
	case !found:
		return notFound(t.Name, key)
	case current == nil:
		return nullVersion(t.Name, key, q.version)
	}
	return &ConflictError{Table: t.Name, Key: key, Expected: expected, Current: *current}
}

// updateSQL builds the compare-and-swap:
//
//	WITH txkit_write AS (
//		UPDATE t SET a = $3, b = $4, version = version + 1
//		WHERE key = $1 AND version = $2 RETURNING version
//	), txkit_current AS (
//		SELECT version FROM t
//		WHERE key = $1 AND NOT EXISTS (SELECT FROM txkit_write) FOR KEY SHARE
//	), txkit_latest AS (
//		SELECT version FROM t
//		WHERE key = $1 AND (SELECT version FROM txkit_current) = $2 FOR SHARE
//	), txkit_found AS (
//		SELECT version FROM txkit_latest
//		UNION ALL SELECT version FROM txkit_current WHERE version IS DISTINCT FROM $2
//	)
//	SELECT (SELECT version FROM txkit_write),
//	       (SELECT version FROM txkit_found), EXISTS (SELECT FROM txkit_found)
//
// The last two columns tell a stale version from a missing row, and both
// from a row whose version is NULL (which no version matches), in the same
// round trip.
//
// The reads lock, so that under READ COMMITTED they see the row as a
// transaction the UPDATE waited for left it, although the statement's
// snapshot predates that transaction's commit: a locking read of a row
// changed since the snapshot, in a way its lock mode conflicts with, reads
// the newest version of the row instead. txkit_current takes FOR KEY
// SHARE, the weakest lock, which conflicts only with deletes and key
// changes: a row deleted (or re-keyed) meanwhile is seen as gone. A plain
// UPDATE does not conflict with it, though, and txkit_current then reads
// the row as the snapshot has it, where it can still hold the expected
// version. Only in that case, which the UPDATE failing on the expected
// version shows, txkit_latest reads the row again with FOR SHARE, which
// conflicts with updates, and so reads the version the row holds now.
// That read never waits and adds no lock that matters: the UPDATE, when it
// waited, locked the row's newest version for this transaction (in the
// stronger mode an UPDATE takes), and PostgreSQL keeps that lock although
// the row then failed the WHERE. Under REPEATABLE READ and SERIALIZABLE
// that case never arises: the UPDATE fails with a serialization failure
// instead.
//
// When the UPDATE succeeds, the NOT EXISTS and the comparison, each
// evaluated once, stop the reads before they start. The names of the CTEs
// are unlikely table names: a CTE hides a table of the same name from the
// statement's later parts.
func (q quoted) updateSQL(key any, version int64, set map[string]any) (string, []any, error) {
	cols := make([]string, 0, len(set))
	for c := range set {
		cols = append(cols, c)
	}
	// Sorted, so that one set of columns is always one statement text, and
	// pgx prepares it once.
	slices.Sort(cols)
	args := []any{key, version}
	var b strings.Builder
	b.WriteString("WITH txkit_write AS (UPDATE " + q.table + " SET ")
	for _, c := range cols {
		qc, err := names.Quote("Update set", c)
		if err != nil {
			return "", nil, err
		}
		if qc == q.key || qc == q.version {
			return "", nil, invalid("Update set names %s: the key and version columns are not set by hand", qc)
		}
		args = append(args, set[c])
		b.WriteString(qc + " = $" + strconv.Itoa(len(args)) + ", ")
	}
	b.WriteString(q.version + " = " + q.version + " + 1 WHERE " + q.key + " = $1 AND " + q.version + " = $2 RETURNING " + q.version + ")")
	b.WriteString(", " + q.current() + " SELECT (SELECT " + q.version + " FROM txkit_write), " + currentCols)
	return b.String(), args, nil
}

func (q quoted) deleteSQL() string {
	return "WITH txkit_write AS (DELETE FROM " + q.table + " WHERE " + q.key + " = $1 AND " + q.version + " = $2 RETURNING 1), " +
		q.current() + " SELECT EXISTS (SELECT FROM txkit_write), " + currentCols
}

// current is the CTEs that read the row's version when the write
// (txkit_write) changed nothing, ending in txkit_found: no row when there
// is no row with the key (see updateSQL).
func (q quoted) current() string {
	return "txkit_current AS (SELECT " + q.version + " AS version FROM " + q.table +
		" WHERE " + q.key + " = $1 AND NOT EXISTS (SELECT FROM txkit_write) FOR KEY SHARE), " +
		"txkit_latest AS (SELECT " + q.version + " AS version FROM " + q.table +
		" WHERE " + q.key + " = $1 AND (SELECT version FROM txkit_current) = $2 FOR SHARE), " +
		"txkit_found AS (SELECT version FROM txkit_latest UNION ALL SELECT version FROM txkit_current WHERE version IS DISTINCT FROM $2)"
}

// currentCols is the version read by txkit_found, and whether there was
// a row to read it from.
const currentCols = "(SELECT version FROM txkit_found), EXISTS (SELECT FROM txkit_found)"
