// Package serverkind tells PostgreSQL from the servers that speak its
// protocol but not all of its semantics, from what the server said at
// connect (its ParameterStatus messages), with no round trip.
package serverkind

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Kind is a family of servers that speak the PostgreSQL protocol.
type Kind int

const (
	// PostgreSQL, or a server that does not say it is anything else.
	PostgreSQL Kind = iota
	// CockroachDB reports crdb_version at connect. Its pg_advisory_*
	// functions are stubs that lock nothing, it has no pg_xact_status, and
	// it does not take the protocol's fast-path function calls.
	CockroachDB
	// YugabyteDB reports a server_version such as "11.2-YB-2.20.0.0-b0".
	// Its transactions are not PostgreSQL's: their ids cannot be asked
	// about with pg_xact_status.
	YugabyteDB
)

func (k Kind) String() string {
	switch k {
	case CockroachDB:
		return "CockroachDB"
	case YugabyteDB:
		return "YugabyteDB"
	}
	return "PostgreSQL"
}

// Of returns the kind of server pc is connected to.
func Of(pc *pgconn.PgConn) Kind {
	if pc.ParameterStatus("crdb_version") != "" {
		return CockroachDB
	}
	if strings.Contains(pc.ParameterStatus("server_version"), "-YB-") {
		return YugabyteDB
	}
	return PostgreSQL
}
