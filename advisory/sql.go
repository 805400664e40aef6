package advisory

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/txkit/txkit/internal/pgtimeout"
)

// lockFunc names the PostgreSQL function for a lock call:
// pg_[try_]advisory_[xact_]lock[_shared].
func lockFunc(try, xact, shared bool) string {
	f := "pg_"
	if try {
		f += "try_"
	}
	f += "advisory_"
	if xact {
		f += "xact_"
	}
	f += "lock"
	if shared {
		f += "_shared"
	}
	return f
}

func unlockFunc(shared bool) string {
	if shared {
		return "pg_advisory_unlock_shared"
	}
	return "pg_advisory_unlock"
}

// tighterTimeout is a SQL expression for the lock_timeout to use: the
// session's own setting cur, unless ours (parameter p) is shorter or cur is
// 0 (no limit). A timeout set by the application (for example
// txn.Options.LockTimeout) is never lengthened.
func tighterTimeout(cur string, p int) string {
	ours := "$" + strconv.Itoa(p) + "::text"
	return fmt.Sprintf("CASE WHEN %[1]s::interval = '0' OR %[1]s::interval > %[2]s::interval THEN %[2]s ELSE %[1]s END", cur, ours)
}

// shape is what a lock statement's text depends on; the values travel as
// parameters, so one text per shape is built and reused (and pgx prepares
// it once per connection).
type shape struct {
	tx, pair, try, shared, fence, timeout bool
}

var statements sync.Map // shape → string

func statementFor(s shape) string {
	if v, ok := statements.Load(s); ok {
		return v.(string)
	}
	var sql string
	if s.tx {
		sql = txSQL(s)
	} else {
		sql = sessionSQL(s)
	}
	statements.Store(s, sql)
	return sql
}

// keySQL is the key's parameters, $1 or $1 and $2, and the number of the
// next parameter.
func keySQL(pair bool) (string, int) {
	if pair {
		return "$1::int4, $2::int4", 3
	}
	return "$1::int8", 2
}

// sessionStatement is the one statement that takes a session lock. It
// returns the backend's pid, whether the lock was taken, and the fencing
// token, in one round trip:
//
//   - The lock function only runs if pg_backend_pid() equals the pid the
//     connection got in its startup BackendKeyData (or the pooler check is
//     skipped): they differ only when a pooler relays the session, and then
//     nothing is locked and locked is NULL.
//   - A timeout is set with set_config(..., is_local => true) in a subquery
//     the lock call reads from, so it is in force for this statement's
//     implicit transaction only and is evaluated before the lock call.
//   - With fencing, a data-modifying CTE reads the lock's row and bumps the
//     token only if the lock was taken. The fence table is named in the
//     statement, so a missing table fails the statement at parse time,
//     before anything is locked.
func sessionStatement(r *request, startupPID uint32, timeout time.Duration) (string, []any) {
	args := make([]any, 0, 7)
	args = append(args, r.k.args()...)
	args = append(args, int64(startupPID), r.o.SkipPoolerCheck)
	// pgtimeout rounds up to whole milliseconds (a sub-millisecond bound
	// must not become 0, "wait forever") and says no to what the server
	// cannot hold: then no lock_timeout is set.
	setting, bounded := pgtimeout.Setting(timeout)
	if bounded {
		args = append(args, setting)
	}
	if r.o.Fence {
		form, id := r.k.fenceKey()
		args = append(args, form, id)
	}
	return statementFor(shape{pair: r.k.pair, try: r.try, shared: r.o.Shared, fence: r.o.Fence, timeout: bounded}), args
}

func sessionSQL(s shape) string {
	keys, p := keySQL(s.pair)
	lock := lockFunc(s.try, false, s.shared) + "(" + keys + ")"
	if !s.try {
		lock += " IS NOT NULL" // the waiting functions return void
	}
	sel := fmt.Sprintf("SELECT pg_backend_pid() AS pid, CASE WHEN pg_backend_pid() = $%d::int8 OR $%d::bool THEN %s END AS locked, NULL::int8 AS token",
		p, p+1, lock)
	p += 2
	if s.timeout {
		sel += " FROM (SELECT set_config('lock_timeout', " + tighterTimeout("current_setting('lock_timeout')", p) + ", true)) t"
		p++
	}
	if !s.fence {
		return sel
	}
	return fmt.Sprintf(`WITH l AS MATERIALIZED (%s),
f AS (INSERT INTO %s AS f (form, key, token) SELECT $%d::int2, $%d::int8, 1 FROM l WHERE l.locked
	ON CONFLICT (form, key) DO UPDATE SET token = f.token + 1, acquired_at = now() RETURNING f.token)
SELECT l.pid, l.locked, (SELECT token FROM f) FROM l`, sel, FenceTable, p, p+1)
}

// txStatement is the statement that takes a transaction lock, waiting at
// most timeout if it is positive. The timeout is set for the lock call and
// the transaction's own lock_timeout put back in the same statement; the
// CTEs read from each other, which fixes the order: read the old setting,
// set ours, lock, restore.
func txStatement(k key, try, shared bool, timeout time.Duration) (string, []any) {
	setting, bounded := pgtimeout.Setting(timeout)
	s := shape{tx: true, pair: k.pair, try: try, shared: shared, timeout: bounded && !try}
	args := k.args()
	if s.timeout {
		args = append(args, setting)
	}
	return statementFor(s), args
}

func txSQL(s shape) string {
	keys, p := keySQL(s.pair)
	lock := lockFunc(s.try, true, s.shared) + "(" + keys + ")"
	if !s.timeout {
		return "SELECT " + lock
	}
	return fmt.Sprintf(`WITH o AS MATERIALIZED (SELECT current_setting('lock_timeout') AS v),
s AS MATERIALIZED (SELECT set_config('lock_timeout', %s, true) AS v FROM o),
l AS MATERIALIZED (SELECT %s IS NOT NULL AS ok FROM s)
SELECT set_config('lock_timeout', o.v, true) FROM o, l`, tighterTimeout("o.v", p), lock)
}

// unlockStatement releases a session lock; it returns false if the session
// did not hold it.
func unlockStatement(k key, shared bool) (string, []any) {
	keySQL, args := k.params(1)
	return "SELECT " + unlockFunc(shared) + "(" + keySQL + ")", args
}

// cleanupStatement releases the lock if, and only if, this session holds
// it, without the warning pg_advisory_unlock logs for a lock not held. It
// runs after a lock statement failed, when the lock might have been granted
// just before the failure.
func cleanupStatement(k key, shared bool) (string, []any) {
	classid, objid, objsubid := k.locks()
	keySQL, _ := k.params(4)
	args := []any{int64(classid), int64(objid), objsubid}
	if !k.pair {
		args = append(args, k.id)
	} else {
		args = append(args, k.hi, k.lo)
	}
	return `SELECT count(` + unlockFunc(shared) + `(` + keySQL + `)) FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = $3`, args
}

// holdersStatement lists the sessions holding the lock.
func holdersStatement(k key) (string, []any) {
	classid, objid, objsubid := k.locks()
	return `SELECT l.pid, l.mode = 'ShareLock', coalesce(a.application_name, ''), coalesce(host(a.client_addr), '')
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND l.classid::int8 = $1 AND l.objid::int8 = $2 AND l.objsubid = $3
ORDER BY l.pid`, []any{int64(classid), int64(objid), objsubid}
}
