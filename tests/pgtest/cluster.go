package pgtest

import (
	"context"

	"github.com/txkit/txkit/internal/devdb"
)

// Cluster is a throwaway PostgreSQL cluster run from the server binaries on
// this machine (see [devdb.Cluster]). Tests that need to restart or stop a
// server (fault tests) start their own.
type Cluster = devdb.Cluster

// StartCluster creates a cluster with initdb and starts a postgres server on a
// free loopback port. Call Close when done.
func StartCluster(ctx context.Context) (*Cluster, error) {
	return devdb.Start(ctx)
}

// StartClusterWith is StartCluster with server settings of the caller's
// choosing, each "name=value" (for example "max_connections=20"). They are
// given after the defaults, so they win over them, and they stay in force
// across Restart.
func StartClusterWith(ctx context.Context, settings ...string) (*Cluster, error) {
	return devdb.Start(ctx, settings...)
}

// ServerUser is the unprivileged account that server programs (postgres,
// pgbouncer) run as when the test process is root, as both refuse to run as
// root. A nil *ServerUser means the current user.
type ServerUser = devdb.ServerUser

// LookupServerUser returns the "postgres" account when the process is root,
// and nil otherwise.
func LookupServerUser() (*ServerUser, error) {
	return devdb.LookupServerUser()
}
