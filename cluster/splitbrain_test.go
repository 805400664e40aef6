package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// After a failover the old primary comes back as a primary on its old
// timeline (restarted without being rewound or fenced): two nodes claim
// to be primary, and writes must not split between them. They stay on the
// promoted node, whose timeline is later, even though the old one was seen
// turning primary last; the old one is shown as not routable.
func TestReturningOldPrimaryGetsNoWrites(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE log (id int)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))

	port := func() int {
		var port int
		require.NoError(t, txn.WithTx(ctx, c, txn.Options{Retry: fastRetry(50)}, func(ctx context.Context, tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO log VALUES (1)")
			return err
		}))
		return port
	}
	r.Primary.Stop()
	require.NoError(t, r.Replicas[0].Promote(ctx))
	eventually(t, "the promoted node takes the writes", func() bool { return port() == r.Replicas[0].Port() })

	require.NoError(t, r.Primary.Start(ctx))
	eventually(t, "the old primary is seen again", func() bool {
		for _, n := range c.Nodes() {
			if portOf(t, n.Name) == r.Primary.Port() && n.Role == cluster.Primary {
				return true
			}
		}
		return false
	})
	for i := range 20 {
		require.Equal(t, r.Replicas[0].Port(), port(), "write %d went to the old primary", i)
	}
	for _, n := range c.Nodes() {
		if portOf(t, n.Name) == r.Primary.Port() {
			require.False(t, n.Routable)
			require.Contains(t, n.Err, "timeline")
		}
	}

	// A Cluster opened now, the old primary listed first, picks the
	// promoted node too; with the promoted node down, writes wait for it
	// and fail rather than go to the former primary.
	fresh := open(t, []string{r.Primary.URL(), r.Replicas[0].URL()}, cluster.Options{CheckInterval: 20 * time.Millisecond, PrimaryWait: 100 * time.Millisecond})
	p, err := fresh.Primary(ctx)
	require.NoError(t, err)
	require.Equal(t, r.Replicas[0].Port(), portOf(t, p.Config().Hosts[0]))
	r.Replicas[0].Stop()
	eventually(t, "the promoted node is seen down", func() bool {
		for _, n := range fresh.Nodes() {
			if portOf(t, n.Name) == r.Replicas[0].Port() && !n.Healthy {
				return true
			}
		}
		return false
	})
	called := 0
	err = txn.WithTx(ctx, fresh, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
		called++
		return nil
	})
	require.ErrorIs(t, err, cluster.ErrNoPrimary)
	require.Zero(t, called, "no write reached the former primary")
}

// Two replicas promoted one after the other both write on the same new
// timeline: writes go to the one seen turning primary last.
func TestSameTimelinePrimariesWritesGoToTheLastPromoted(t *testing.T) {
	t.Parallel()
	r := replicated(t, 2)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond})
	r.Primary.Stop()
	writesTo := func() int {
		var port int
		require.NoError(t, txn.WithTx(ctx, c, txn.Options{Retry: fastRetry(50)}, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port)
		}))
		return port
	}
	require.NoError(t, r.Replicas[0].Promote(ctx))
	eventually(t, "the first promoted node takes the writes", func() bool { return writesTo() == r.Replicas[0].Port() })
	require.NoError(t, r.Replicas[1].Promote(ctx))
	eventually(t, "the last promoted node takes the writes", func() bool { return writesTo() == r.Replicas[1].Port() })
	for range 5 {
		require.Equal(t, r.Replicas[1].Port(), writesTo())
	}
}
