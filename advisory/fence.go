package advisory

import (
	"context"
	"reflect"

	"github.com/jackc/pgerrcode"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// FenceTable is the table that holds the last fencing token given out for
// each key, in the first schema of the search_path.
const FenceTable = "txkit_advisory_fence"

// FenceTableDDL creates [FenceTable] if it does not exist. Run it from your
// migrations if the application's role may not create tables; otherwise the
// table is created on the first acquisition with [Options.Fence].
//
// form is 1 for bigint keys and 2 for pair keys (as pg_locks.objsubid);
// key is the bigint key, or the pair as namespace<<32 | name. token is the
// last token given out: it only grows.
const FenceTableDDL = `CREATE TABLE IF NOT EXISTS ` + FenceTable + ` (
	form        smallint    NOT NULL,
	key         bigint      NOT NULL,
	token       bigint      NOT NULL,
	acquired_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (form, key)
)`

// CreateFenceTable runs [FenceTableDDL] on db.
func CreateFenceTable(ctx context.Context, db txn.Querier) error {
	if err := checkDB(db); err != nil {
		return err
	}
	_, err := db.Exec(ctx, FenceTableDDL)
	switch retry.SQLState(err) {
	case pgerrcode.UniqueViolation, pgerrcode.DuplicateTable, pgerrcode.DuplicateObject:
		// Another session created it at the same moment: CREATE TABLE IF
		// NOT EXISTS is not atomic against a concurrent creation, and the
		// loser fails on the table's row type or the catalog's unique
		// index instead.
		return nil
	}
	return err
}

// checkDB refuses a nil db, or a nil pointer (a *pgxpool.Pool or
// *pgx.Conn variable never assigned), which would panic at the first
// statement.
func checkDB(db txn.Querier) error {
	if db == nil {
		return errNil("db (pass a *pgxpool.Pool, *pgx.Conn or pgx.Tx)")
	}
	switch v := reflect.ValueOf(db); v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		if v.IsNil() {
			return errNil("db (pass a *pgxpool.Pool, *pgx.Conn or pgx.Tx)")
		}
	}
	return nil
}
