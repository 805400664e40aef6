package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewPoolGivesEachTestItsOwnDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := pgtest.NewPool(t)
	b := pgtest.NewPool(t)
	var nameA, nameB string
	require.NoError(t, a.QueryRow(ctx, "SELECT current_database()").Scan(&nameA))
	require.NoError(t, b.QueryRow(ctx, "SELECT current_database()").Scan(&nameB))
	require.NotEqual(t, nameA, nameB)

	_, err := a.Exec(ctx, "CREATE TABLE only_in_a (id int)")
	require.NoError(t, err)
	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n))
	require.Zero(t, n)
}

func TestDatabaseIsDroppedInCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := pgtest.NewPool(t)
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	})
	srv, err := pgtest.SharedServer(ctx)
	require.NoError(t, err)
	conn := pgtest.Connect(t, srv.URL)
	var exists bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s should be dropped", name)
}

// TestBinariesCluster starts a throwaway cluster from the local server
// binaries, whatever TEST_DATABASE_URL says, and restarts it.
func TestBinariesCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgtest.StartCluster(ctx)
	if err != nil {
		t.Fatalf("the local server binaries must work on this machine: %v", err)
	}
	t.Cleanup(func() { require.NoError(t, c.Close()) })

	conn := pgtest.Connect(t, c.URL())
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, c.Restart(ctx))
	conn = pgtest.Connect(t, c.URL())
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
}

func TestResolveUsesTheEnvironmentFirst(t *testing.T) {
	t.Setenv("TXKIT_PGTEST_SAMPLE_URL", "postgres://example.invalid/db")
	srv, err := pgtest.Resolve(context.Background(), "TXKIT_PGTEST_SAMPLE_URL")
	require.NoError(t, err)
	require.Equal(t, "env", srv.Kind)
	require.Equal(t, "postgres://example.invalid/db", srv.URL)
	require.NoError(t, srv.Close())
}

// Setup gives a pool with the schema applied and the pool configured, and
// a ctx that is bounded and ends when the test's function returns.
func TestSetupAppliesSchemaAndConfigAndBoundsCtx(t *testing.T) {
	t.Parallel()
	var ctx context.Context
	t.Run("inner", func(t *testing.T) {
		s := pgtest.Setup(t,
			pgtest.Schema("CREATE TABLE a (id int); INSERT INTO a VALUES (1)"),
			pgtest.Schema("CREATE TABLE b (id int)"),
			pgtest.Configure(func(c *pgxpool.Config) { c.MaxConns = 3 }))
		ctx = s.Ctx
		_, ok := s.Ctx.Deadline()
		require.True(t, ok, "Ctx is bounded")
		var n int
		require.NoError(t, s.Pool.QueryRow(s.Ctx, "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)").Scan(&n))
		require.Equal(t, 1, n)
		require.Equal(t, int32(3), s.Pool.Config().MaxConns)
		require.NoError(t, s.Ctx.Err())
	})
	require.Error(t, ctx.Err(), "Ctx ends with the test")
}

// TestNewReplicated: a write on the primary reaches the replica, which
// is a hot standby; the nodes are closed when the test ends.
func TestNewReplicated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var r *pgtest.Replicated
	t.Run("inner", func(t *testing.T) {
		r = pgtest.NewReplicated(t, pgtest.ReplicationOptions{})
		primary := pgtest.Connect(t, r.Primary.URL())
		_, err := primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
		require.NoError(t, err)
		require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))
		replica := pgtest.Connect(t, r.Replicas[0].URL())
		var n int
		require.NoError(t, replica.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
		require.Equal(t, 1, n)
		var standby bool
		require.NoError(t, replica.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby))
		require.True(t, standby)
	})
	for _, c := range r.Nodes() {
		conn, err := pgx.Connect(ctx, c.URL())
		if err == nil {
			_ = conn.Close(ctx)
			t.Fatalf("a node still accepts connections on port %d after the test that started it ended", c.Port())
		}
	}
}
