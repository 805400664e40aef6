package locks

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/txn"
)

// Queue is a table used as a work queue. Workers claim ready rows with FOR
// UPDATE SKIP LOCKED, so that each passes over the rows others hold instead
// of waiting for them, and a row is worked on by one worker at a time:
//
//	q := locks.Queue[Job]{
//		Table: pgx.Identifier{"jobs"}, Key: "id",
//		Ready: "done_at IS NULL",
//		Done:  locks.Done{SetNow: []string{"done_at"}},
//	}
//	n, err := q.Claim(ctx, pool, 10, func(ctx context.Context, tx pgx.Tx, jobs []Job) error {
//		return process(ctx, tx, jobs) // in the same transaction
//	})
//
// A Queue is a value: build it once, use it from many goroutines.
type Queue[T any] struct {
	// Table holds the rows to claim. Required.
	Table pgx.Identifier
	// Key is a unique column of Table, normally its primary key. Required.
	Key string
	// Ready is the SQL condition a row must meet to be claimed, such as
	// "state = 'ready' AND run_at <= now()", with $1, $2, ... standing for
	// ReadyArgs. It is SQL the program writes, never text built from
	// input: values go in ReadyArgs. Empty means every row is ready, which
	// suits only Done.Delete.
	Ready     string
	ReadyArgs []any
	// OrderBy lists columns, ascending, that say which ready rows go
	// first; empty means Key.
	OrderBy []string
	// Done is what claiming does to a row.
	Done Done
	// Scan makes a T of a claimed row; nil means pgx.RowToStructByName[T],
	// which needs a field for every column of Table.
	Scan pgx.RowToFunc[T]
	// Tx configures the claiming transaction: name, timeouts, retry policy.
	Tx txn.Options
}

// Done says what becomes of a claimed row. It is applied by the statement
// that claims the row, inside the transaction that does the work, so it
// commits with that work or not at all: a row is never done without having
// been worked on, nor worked on twice. Set exactly one of Delete, or Set
// and SetNow.
type Done struct {
	// Delete deletes the claimed rows.
	Delete bool
	// Set sets columns of the claimed rows to values, sent as parameters:
	// {"state": "done"}.
	Set map[string]any
	// SetNow sets columns to the transaction's timestamp, now().
	SetNow []string
}

// Claim claims up to n ready rows, calls fn with them, and commits, in one
// transaction on db (or a savepoint of ctx's, see txn.WithTx). The rows are
// marked done by the claiming statement (see [Done]), and fn receives them
// as that statement left them: with Set and SetNow applied, or, with
// Delete, as they were. They come in OrderBy order. fn runs only if at
// least one row was claimed; Claim returns how many rows it committed as
// done, 0 when none was ready or free.
//
// Like [Query], Claim refuses a connection without standard_conforming_strings
// on, since Ready is scanned as SQL.
//
// If fn returns an error or panics, the transaction rolls back: the rows are
// ready again for any worker, and fn's error is returned. Like any
// txn.WithTx function, fn may run more than once (a deadlock or
// serialization failure restarts the transaction, and claims afresh).
func (q Queue[T]) Claim(ctx context.Context, db txn.Beginner, n int, fn func(ctx context.Context, tx pgx.Tx, items []T) error) (int, error) {
	if fn == nil {
		return 0, invalid("Queue.Claim: nil fn")
	}
	query, args, err := q.claimSQL(n)
	if err != nil {
		return 0, err
	}
	scan := q.Scan
	if scan == nil {
		scan = pgx.RowToStructByName[T]
	}
	claimed, err := txn.WithTxValue(ctx, db, q.Tx, func(ctx context.Context, tx pgx.Tx) (int, error) {
		// Ready was scanned as the server reads it with standard strings.
		if err := checkStandardStrings(pgConnOf(tx)); err != nil {
			return 0, err
		}
		qctx, w := startWait(ctx, Options{Strength: ForNoKeyUpdate, Wait: SkipLocked}, 0)
		rows, err := tx.Query(qctx, query, args...)
		if err != nil {
			w.finish(err, 0)
			return 0, Classify(err)
		}
		items, err := pgx.CollectRows(rows, scan)
		w.finish(err, len(items))
		if err != nil {
			return 0, Classify(err)
		}
		if len(items) == 0 {
			return 0, nil
		}
		return len(items), fn(ctx, tx, items)
	})
	return claimed, err
}

// queueAlias names Table in the UPDATE or DELETE of the claim, to tell its
// columns from those of the claimed CTE.
const queueAlias = "txkit_queue"

// claimSQL builds the claiming statement:
//
//	WITH claimed AS (
//		SELECT key FROM table WHERE (ready) ORDER BY ... LIMIT $n FOR NO KEY UPDATE SKIP LOCKED
//	), done AS (
//		UPDATE table AS txkit_queue SET ... FROM claimed WHERE txkit_queue.key = claimed.key
//		RETURNING txkit_queue.*
//	)
//	SELECT * FROM done ORDER BY ...
//
// Parameters: ReadyArgs first, as Ready numbers them, then the limit, then
// the Set values.
func (q Queue[T]) claimSQL(n int) (string, []any, error) {
	if n <= 0 {
		return "", nil, invalid("Queue.Claim: n must be positive, not %d", n)
	}
	table, err := names.Table("Queue.Table", q.Table)
	if err != nil {
		return "", nil, err
	}
	key, err := names.Quote("Queue.Key", q.Key)
	if err != nil {
		return "", nil, err
	}
	order := []string{key}
	if len(q.OrderBy) > 0 {
		order = order[:0]
		for _, c := range q.OrderBy {
			oc, err := names.Quote("Queue.OrderBy", c)
			if err != nil {
				return "", nil, err
			}
			order = append(order, oc)
		}
	}
	orderBy := strings.Join(order, ", ")
	if err := q.checkDone(); err != nil {
		return "", nil, err
	}
	if err := q.checkReady(); err != nil {
		return "", nil, err
	}
	args := slices.Clone(q.ReadyArgs)
	args = append(args, n)
	limit := "$" + strconv.Itoa(len(args))

	var b strings.Builder
	b.WriteString("WITH claimed AS (SELECT " + key + " FROM " + table)
	if q.Ready != "" {
		b.WriteString(" WHERE (" + q.Ready + "\n)")
	}
	strength := ForNoKeyUpdate // the key stays: foreign keys to the row may still be inserted
	if q.Done.Delete {
		strength = ForUpdate
	}
	b.WriteString(" ORDER BY " + orderBy + " LIMIT " + limit + " " +
		Options{Strength: strength, Wait: SkipLocked}.String() + "), done AS (")
	match := " claimed WHERE " + queueAlias + "." + key + " = claimed." + key
	if q.Done.Delete {
		b.WriteString("DELETE FROM " + table + " AS " + queueAlias + " USING" + match)
	} else {
		set, setArgs, err := q.setList(key, len(args))
		if err != nil {
			return "", nil, err
		}
		args = append(args, setArgs...)
		b.WriteString("UPDATE " + table + " AS " + queueAlias + " SET " + set + " FROM" + match)
	}
	b.WriteString(" RETURNING " + queueAlias + ".*) SELECT * FROM done ORDER BY " + orderBy)
	return b.String(), args, nil
}

// checkDone validates Done, and that a queue which keeps its done rows
// has a Ready condition to leave them out.
func (q Queue[T]) checkDone() error {
	sets := len(q.Done.Set) > 0 || len(q.Done.SetNow) > 0
	switch {
	case q.Done.Delete && sets:
		return invalid("Queue.Done: Delete and Set/SetNow together")
	case !q.Done.Delete && !sets:
		return invalid("Queue.Done: say what makes a claimed row done (Delete, Set or SetNow)")
	case sets && strings.TrimSpace(q.Ready) == "":
		return invalid("Queue.Ready is empty: a queue that marks rows done with Set or SetNow needs a Ready condition that leaves done rows out")
	}
	return nil
}

// checkReady validates Ready: it must be one condition whose parameters
// are ReadyArgs, since the claim's own parameters follow them.
func (q Queue[T]) checkReady() error {
	if q.Ready == "" {
		if len(q.ReadyArgs) > 0 {
			return invalid("Queue.ReadyArgs without a Ready condition")
		}
		return nil
	}
	toks, err := scan(q.Ready)
	if err != nil {
		return invalid("Queue.Ready: %v", err)
	}
	for _, t := range toks {
		switch t.kind {
		case tokSemi:
			return invalid("Queue.Ready: a condition, not statements (it has a ';')")
		case tokParam:
			if err := q.checkReadyParam(q.Ready[t.start:t.end]); err != nil {
				return err
			}
		}
	}
	if hasLockingClause(toks) {
		return invalid("Queue.Ready: a condition, not a locking clause")
	}
	return nil
}

// checkReadyParam refuses a parameter of Ready ($n) that ReadyArgs has no
// value for.
func (q Queue[T]) checkReadyParam(param string) error {
	p, err := strconv.Atoi(param[1:])
	if err == nil && p >= 1 && p <= len(q.ReadyArgs) {
		return nil
	}
	if len(param) > ident.ShowMax {
		param = ident.Show(param) // digits only, but maybe a megabyte of them
	}
	return invalid("Queue.Ready uses %s but ReadyArgs has %d value(s)", param, len(q.ReadyArgs))
}

// setList renders Done.Set and Done.SetNow as an UPDATE's SET list, in
// column order so that the statement's text, and so pgx's cached
// statement, is the same on every call. Values are numbered after the
// first argsBefore parameters.
func (q Queue[T]) setList(key string, argsBefore int) (string, []any, error) {
	cols := make([]string, 0, len(q.Done.Set))
	for c := range q.Done.Set {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	var parts []string
	var args []any
	seen := map[string]bool{}
	for _, c := range cols {
		qc, err := names.Quote("Queue.Done.Set", c)
		if err != nil {
			return "", nil, err
		}
		args = append(args, q.Done.Set[c])
		parts = append(parts, qc+" = $"+strconv.Itoa(argsBefore+len(args)))
		seen[qc] = true
	}
	for _, c := range q.Done.SetNow {
		qc, err := names.Quote("Queue.Done.SetNow", c)
		if err != nil {
			return "", nil, err
		}
		if seen[qc] {
			return "", nil, invalid("Queue.Done: column %s is set twice", qc)
		}
		parts = append(parts, qc+" = now()")
		seen[qc] = true
	}
	if seen[key] {
		return "", nil, invalid("Queue.Done: the key column %s cannot be changed", key)
	}
	return strings.Join(parts, ", "), args, nil
}
