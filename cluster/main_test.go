package cluster_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	_ txn.Router  = (*cluster.Cluster)(nil)
	_ txn.Querier = (*cluster.Cluster)(nil)
)

// replicated starts a primary with n streaming replicas for one test.
func replicated(t *testing.T, n int, replicaSettings ...string) *pgtest.Replicated {
	t.Helper()
	return pgtest.NewReplicated(t, pgtest.ReplicationOptions{Replicas: n, Replica: replicaSettings})
}

// open opens a Cluster on the nodes' URLs and closes it at the end of the
// test.
func open(t *testing.T, urls []string, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Open(context.Background(), urls, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Close(ctx))
	})
	return c
}

// openBoth opens two Clusters on r's nodes checked every interval, c
// with the default Reads and only with ReplicasOnly, and waits until
// both route to the replica.
func openBoth(t *testing.T, r *pgtest.Replicated, interval time.Duration) (c, only *cluster.Cluster) {
	t.Helper()
	c = open(t, urls(r), cluster.Options{CheckInterval: interval})
	only = open(t, urls(r), cluster.Options{CheckInterval: interval, Reads: cluster.ReplicasOnly})
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		m, ok2 := nodeByRole(only, cluster.Replica)
		return ok && n.Routable && ok2 && m.Routable
	})
	return c, only
}

func urls(r *pgtest.Replicated) []string {
	var out []string
	for _, n := range r.Nodes() {
		out = append(out, n.URL())
	}
	return out
}

// eventually waits, without a timed assertion, for cond: it fails the test
// only if cond stays false for a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastRetry(attempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: attempts, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
}

// nodeByRole returns the stats of the first node with role r.
func nodeByRole(c *cluster.Cluster, r cluster.Role) (cluster.NodeStats, bool) {
	for _, n := range c.Nodes() {
		if n.Role == r {
			return n, true
		}
	}
	return cluster.NodeStats{}, false
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return n
}
