package pool

import (
	"context"
	"fmt"
	"runtime"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/serverkind"
)

// Limits are the server's connection limits as this pool's role and
// database meet them, read when the pool opens.
type Limits struct {
	MaxConnections    int // max_connections
	SuperuserReserved int // superuser_reserved_connections
	Reserved          int // reserved_connections (PostgreSQL 16+; 0 before)
	RoleLimit         int // the role's rolconnlimit; -1 = none
	DatabaseLimit     int // the database's datconnlimit; -1 = none
	Superuser         bool
	InUse             int // client connections to the server, other than Open's own
	RoleInUse         int // of those, the role's
	DatabaseInUse     int // of those, the database's
	BehindPooler      bool
	// Server is the kind of server when it is not PostgreSQL
	// ("CockroachDB", "YugabyteDB"): its limits are not PostgreSQL's and
	// were not read. "" for PostgreSQL.
	Server               string
	serverPID, clientPID uint32
}

const limitsSQL = `SELECT current_setting('max_connections')::int,
	current_setting('superuser_reserved_connections')::int,
	coalesce(current_setting('reserved_connections', true), '0')::int,
	r.rolconnlimit, r.rolsuper, d.datconnlimit,
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usesysid = r.oid)::int,
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datid = d.oid)::int,
	pg_backend_pid()
FROM pg_roles r, pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()`

// readLimits reads the limits in one round trip on conn.
func readLimits(ctx context.Context, conn *pgx.Conn) (Limits, error) {
	var l Limits
	if kind := serverkind.Of(conn.PgConn()); kind != serverkind.PostgreSQL {
		// Their catalogs and settings differ (CockroachDB has neither
		// superuser_reserved_connections nor backend_type), and their
		// connection limits are per node, not the catalog's.
		l.Server = kind.String()
		return l, nil
	}
	var pid int32
	err := conn.QueryRow(ctx, limitsSQL).Scan(&l.MaxConnections, &l.SuperuserReserved, &l.Reserved,
		&l.RoleLimit, &l.Superuser, &l.DatabaseLimit, &l.InUse, &l.RoleInUse, &l.DatabaseInUse, &pid)
	if err != nil {
		return l, fmt.Errorf("pool: reading the server's connection limits: %w", err)
	}
	// Open's own connection is counted; it is not someone else's.
	l.InUse, l.RoleInUse, l.DatabaseInUse = max(l.InUse-1, 0), max(l.RoleInUse-1, 0), max(l.DatabaseInUse-1, 0)
	l.serverPID, l.clientPID = uint32(pid), conn.PgConn().PID()
	// A pooler answers the startup with its own process id, or none: the
	// backend pid the server reports then differs.
	l.BehindPooler = l.serverPID != l.clientPID
	return l, nil
}

// constraint is one limit a pool's connections count against.
type constraint struct {
	name  string
	limit int
	used  int
}

func (l Limits) constraints() []constraint {
	// The reserved slots are left to administrators even when this role
	// could use them: they are how one gets in when everything else is full.
	cs := []constraint{{"max_connections - superuser_reserved_connections - reserved_connections", l.MaxConnections - l.SuperuserReserved - l.Reserved, l.InUse}}
	if !l.Superuser { // the server does not apply these to superusers
		if l.RoleLimit >= 0 {
			cs = append(cs, constraint{"the role's connection limit", l.RoleLimit, l.RoleInUse})
		}
		if l.DatabaseLimit >= 0 {
			cs = append(cs, constraint{"the database's connection limit", l.DatabaseLimit, l.DatabaseInUse})
		}
	}
	return cs
}

// defaultMaxConns is pgxpool's default size.
func defaultMaxConns() int32 { return max(4, int32(runtime.NumCPU())) }

// deadlockFloor is the smallest pool on which Workers workers, each holding
// up to ConnsPerWorker connections at once, cannot all wait for one more.
func (o Options) deadlockFloor() int32 {
	if o.Workers <= 0 || o.ConnsPerWorker <= 1 {
		return 0
	}
	return int32(o.Workers*(o.ConnsPerWorker-1) + 1)
}

// sizing is the outcome of fitting the pool to the server.
type sizing struct {
	maxConns int32
	why      string
	warnings []string
}

// fit chooses MaxConns from the options and, when known, the server's
// limits. It refuses (ErrDoesNotFit) a size that can never fit, and warns
// about one that does not fit what is free now.
func fit(o Options, l *Limits) (sizing, error) {
	n := o.instances()
	floor := o.deadlockFloor()
	s := sizing{maxConns: o.MaxConns, why: "MaxConns as configured"}
	if o.MaxConns == 0 {
		s.maxConns, s.why = max(defaultMaxConns(), floor), "default size"
	}
	if l == nil {
		s.why += "; the server's limits were not read (lazy open)"
	} else if l.Server != "" {
		s.why += "; the server is " + l.Server + ", whose connection limits are not read"
	} else if l.BehindPooler {
		s.why += "; behind a connection pooler, so the server's limits were not applied"
		s.warnings = append(s.warnings, "the pool connects through a connection pooler: the server's max_connections bounds the pooler's server connections, not this pool; size the pool against the pooler's client limit (max_client_conn) and per-database pool size instead")
	} else {
		for _, c := range l.constraints() {
			share := c.limit / n
			free := c.limit - c.used
			if o.MaxConns != 0 {
				if int(o.MaxConns)*n > c.limit {
					return s, fmt.Errorf("%w: MaxConns %d × %d instance(s) = %d is more than %s (%d)", ErrDoesNotFit, o.MaxConns, n, int(o.MaxConns)*n, c.name, c.limit)
				}
				if int(o.MaxConns) > free {
					s.warnings = append(s.warnings, fmt.Sprintf("MaxConns %d is more than the %d connection(s) free now under %s (%d, %d in use)", o.MaxConns, free, c.name, c.limit, c.used))
				}
				continue
			}
			room := min(share, free)
			if room < 1 {
				return s, fmt.Errorf("%w: no connection free for this instance under %s (%d, %d in use, %d instance(s))", ErrDoesNotFit, c.name, c.limit, c.used, n)
			}
			if int(s.maxConns) > room {
				s.maxConns = int32(room)
				s.why = fmt.Sprintf("lowered to fit %s (%d, %d in use) shared by %d instance(s)", c.name, c.limit, c.used, n)
			}
		}
	}
	if floor > 0 && s.maxConns < floor {
		return s, fmt.Errorf("%w: a pool of %d can deadlock on itself: %d workers each holding %d connections need at least %d", ErrDoesNotFit, s.maxConns, o.Workers, o.ConnsPerWorker, floor)
	}
	return s, nil
}
