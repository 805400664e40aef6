package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"

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

// Replicated is a throwaway primary with streaming hot standbys (see
// [devdb.Replicated]): URL, Stop, Start and Restart on each node,
// Promote and Follow for failover, Close for all of them.
type Replicated = devdb.Replicated

// ReplicationOptions says how many replicas to start, with which
// settings, and whether each gets a replication slot (see
// [devdb.ReplicationOptions]). The zero value is one replica.
type ReplicationOptions = devdb.ReplicationOptions

// StartReplicated starts a primary and its streaming replicas from the
// local server binaries and returns when every replica accepts read-only
// connections. Call Close when done. The error wraps [devdb.ErrNoBinaries]
// when the machine has no server binaries.
func StartReplicated(ctx context.Context, opts ReplicationOptions) (*Replicated, error) {
	return devdb.StartReplicated(ctx, opts)
}

// RequireReplicationEnv, set to "1" (as CI does), makes [NewReplicated]
// fail rather than skip when the server binaries are missing.
const RequireReplicationEnv = "TXKIT_REQUIRE_REPLICATION"

// NewReplicated is StartReplicated for a test: the nodes are closed when
// t ends (also when it panics), and t is skipped, saying why, when the
// machine has no PostgreSQL server binaries (unless RequireReplicationEnv
// is set). Any other failure to start fails t.
func NewReplicated(t testing.TB, opts ReplicationOptions) *Replicated {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), SetupTimeout)
	defer cancel()
	r, err := devdb.StartReplicated(ctx, opts)
	if errors.Is(err, devdb.ErrNoBinaries) && os.Getenv(RequireReplicationEnv) != "1" {
		t.Skipf("needs PostgreSQL server binaries (initdb, postgres, pg_basebackup) for a primary with replicas: %v", err)
	}
	if err != nil {
		t.Fatalf("pgtest: start a primary with replicas: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("pgtest: close the primary and replicas: %v", err)
		}
	})
	return r
}

// WaitReplayed waits until replica has replayed all the WAL primary had
// inserted when it was called, so every transaction committed on primary
// before the call is visible on replica (see [devdb.WaitReplayed]).
func WaitReplayed(ctx context.Context, primary, replica *Cluster) error {
	return devdb.WaitReplayed(ctx, primary, replica)
}
