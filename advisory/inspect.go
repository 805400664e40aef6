package advisory

import (
	"context"
	"time"

	"github.com/txkit/txkit/txn"
)

// LockInfo is one row of pg_locks for an advisory lock, with the names
// behind its key where they are known.
type LockInfo struct {
	// Name is the lock's name, if it was among the names given to
	// Inspect; "" otherwise.
	Name string
	// Namespace is the namespace of a pair-form lock, if known.
	Namespace string
	// Pair is true for a lock taken with the (int32, int32) form.
	Pair bool
	// Key is the bigint key (Pair false).
	Key int64
	// NamespaceKey and NameKey are the halves of a pair key (Pair true).
	NamespaceKey, NameKey int32

	PID     uint32
	Shared  bool
	Granted bool // false: the session is waiting for the lock
	// WaitStart is when a waiting session began to wait (PostgreSQL 14
	// or later); zero otherwise.
	WaitStart       time.Time
	ApplicationName string
	ClientAddr      string
}

// inspectSQL lists the advisory locks of the current database. waitstart
// is read through to_jsonb so that the query also runs on servers older
// than PostgreSQL 14, which lack the column.
const inspectSQL = `SELECT l.classid::int8, l.objid::int8, l.objsubid::int4, l.pid, l.mode = 'ShareLock', l.granted,
	(to_jsonb(l) ->> 'waitstart')::timestamptz, coalesce(a.application_name, ''), coalesce(host(a.client_addr), '')
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY l.classid, l.objid, l.objsubid, l.granted DESC, l.pid`

// Inspect lists the advisory locks held or awaited in db's current
// database, as pg_locks shows them, naming each key that one of names
// hashes to (for the pair form, each half is looked up among names). It is
// for operators and dashboards: keys are one-way hashes, so a name that is
// not given cannot be recovered, and a key not made by this package shows
// without a name.
func Inspect(ctx context.Context, db txn.Querier, names ...string) ([]LockInfo, error) {
	if err := checkDB(db); err != nil {
		return nil, err
	}
	byKey := make(map[int64]string, len(names))
	byHalf := make(map[int32]string, len(names))
	for _, n := range names {
		if checkName("name", n) != nil {
			continue
		}
		byKey[hash64(n)] = n
		byHalf[hash32(n)] = n
	}
	rows, err := db.Query(ctx, inspectSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LockInfo
	for rows.Next() {
		var (
			classid, objid int64
			objsubid       int32
			pid            int64
			waitStart      *time.Time
			li             LockInfo
		)
		if err := rows.Scan(&classid, &objid, &objsubid, &pid, &li.Shared, &li.Granted, &waitStart, &li.ApplicationName, &li.ClientAddr); err != nil {
			return nil, err
		}
		li.PID = uint32(pid)
		if waitStart != nil {
			li.WaitStart = *waitStart
		}
		if objsubid == 2 {
			li.Pair = true
			li.NamespaceKey, li.NameKey = int32(uint32(classid)), int32(uint32(objid))
			li.Namespace, li.Name = byHalf[li.NamespaceKey], byHalf[li.NameKey]
		} else {
			li.Key = int64(uint64(classid)<<32 | uint64(uint32(objid)))
			li.Name = byKey[li.Key]
		}
		out = append(out, li)
	}
	return out, rows.Err()
}
