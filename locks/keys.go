package locks

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/txn"
)

// ByKey locks the rows of table whose column key holds one of keys, in one
// statement, in the order of that column, and returns the keys of the rows
// it locked, in that order. keys may come in any order and repeat; a key
// with no row is simply not returned (compare lengths to find it), and with
// SkipLocked neither is a row another transaction holds.
//
// The fixed order is what keeps two transactions that lock overlapping sets
// from deadlocking: both take the rows they share in the same order, so
// neither can hold one the other already waits for. The guarantee covers
// transactions that lock their rows of the table through ByKey, all at once:
// a transaction that locks {5} and later {1} has left the order, and can
// still deadlock with one that locks {1, 5}. Lock everything the
// transaction will need in one call.
//
//	ids, err := locks.ByKey(ctx, tx, pgx.Identifier{"accounts"}, "id", []int64{from, to}, locks.Options{})
//
// table and key are quoted (pgx.Identifier), keys go as one array
// parameter. Like [Query], ByKey runs in db's or ctx's transaction or
// returns [ErrNotInTx]; o.Of must be empty, since the one table is named.
func ByKey[K any](ctx context.Context, db txn.Querier, table pgx.Identifier, key string, keys []K, o Options) ([]K, error) {
	query, err := byKeySQL(table, key, o)
	if err != nil {
		return nil, err
	}
	q, err := inTx(ctx, db)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := run(ctx, q, o, query, []any{keys})
	if err != nil {
		return nil, err
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[K])
	if err != nil {
		return nil, Classify(err)
	}
	return locked, nil
}

// byKeySQL is the statement ByKey runs: the locking clause sits above the
// ORDER BY, so the server locks rows in sorted order whatever plan it picks.
func byKeySQL(table pgx.Identifier, key string, o Options) (string, error) {
	if len(o.Of) > 0 {
		return "", invalid("ByKey locks rows of its one table: Options.Of must be empty")
	}
	if err := o.validate(); err != nil {
		return "", err
	}
	t, err := names.Table("ByKey table", table)
	if err != nil {
		return "", err
	}
	k, err := names.Quote("ByKey key column", key)
	if err != nil {
		return "", err
	}
	return "SELECT " + k + " FROM " + t + " WHERE " + k + " = ANY($1) ORDER BY " + k + " " + o.String(), nil
}
