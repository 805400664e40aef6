//go:build linux

package cluster_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/patroni"
)

// Under Patroni, an operator stops the leader while writers run: Patroni
// hands the leader key to the replica and promotes it, and the Cluster
// follows without being told. Every write WithTx reported committed is on
// the new leader; the only errors are ErrCommitUnknown.
func TestPatroniSwitchoverCostsARetry(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	pc := patroni.Start(t, patroni.Options{})
	leader, err := pc.WaitLeader(ctx)
	require.NoError(t, err)
	var replica *patroni.Node
	var dsns []string
	for _, n := range pc.Nodes() {
		dsns = append(dsns, n.URL())
		if n != leader {
			replica = n
		}
	}
	c := open(t, dsns, cluster.Options{CheckInterval: 200 * time.Millisecond, PrimaryWait: time.Minute})
	_, err = c.Exec(ctx, "CREATE TABLE log (id bigint PRIMARY KEY)")
	require.NoError(t, err)

	policy := &retry.Policy{MaxAttempts: 100, InitialInterval: 5 * time.Millisecond, MaxInterval: 100 * time.Millisecond}
	u, err := url.Parse(replica.URL())
	require.NoError(t, err)
	replicaPort := portOf(t, u.Host)
	w, stop := startWriters(t, ctx, c, policy)
	defer stop()
	eventually(t, "writes commit on the first leader", func() bool { return w.count() >= 100 })
	stopped := time.Now()
	leader.Stop()
	next2, err := pc.WaitLeader(ctx)
	require.NoError(t, err, pc.Logs())
	require.Same(t, replica, next2)
	promoted := time.Now()
	before := w.count()
	eventually(t, "writes commit on the new leader", func() bool { return w.count() >= before+100 })
	stop()

	var firstOnNew time.Time // the first commit on the replica, once promoted
	for _, cm := range w.committed {
		if cm.port == replicaPort {
			firstOnNew = cm.at
			break
		}
	}
	committed := w.ids()

	t.Logf("%d writes reported committed, %d with outcome unknown; after the stop began, Patroni's new leader was seen in %v and the first commit on it through the Cluster came in %v",
		len(committed), w.unknown, promoted.Sub(stopped).Round(time.Millisecond), firstOnNew.Sub(stopped).Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, replica.URL())
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var found int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM log WHERE id = ANY($1)", committed).Scan(&found))
	require.Equal(t, len(committed), found, "every write reported committed is on the new leader")
}
