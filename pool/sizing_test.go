package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/fakepg"
)

// The sizing tests share the scratch cluster and count its connections, so
// they do not run in parallel with each other.

func TestSizeIsTheInstancesShareOfMaxConnections(t *testing.T) {
	s := scratchCluster(t)
	p, _ := openOn(t, s.cluster.URL(), pool.Options{Instances: 8})
	l, ok := p.Limits()
	require.True(t, ok)
	assert.Equal(t, scratchMaxConns, l.MaxConnections)
	assert.Equal(t, 3, l.SuperuserReserved)
	assert.True(t, l.Superuser)
	// (20 - 3 reserved) / 8 instances = 2.
	assert.EqualValues(t, 2, p.Config().MaxConns)
	assert.EqualValues(t, 2, p.Stat().MaxConns())
	assert.Contains(t, p.Config().Sizing, "shared by 8 instance(s)")
}

func TestSizeFitsTheRolesConnectionLimit(t *testing.T) {
	s := scratchCluster(t)
	p, _ := openOn(t, s.url("app", appPassword, "postgres", ""), pool.Options{})
	l, _ := p.Limits()
	assert.Equal(t, 3, l.RoleLimit)
	assert.EqualValues(t, 3, p.Config().MaxConns)
	// The pool can use all three, and a fourth waits instead of failing
	// with 53300 "too many connections for role".
	ctx := context.Background()
	var conns []interface{ Release() }
	for range 3 {
		c, err := p.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

func TestSizeFitsTheDatabasesConnectionLimit(t *testing.T) {
	s := scratchCluster(t)
	p, _ := openOn(t, s.url("reporting", appPassword, "limited", ""), pool.Options{})
	l, _ := p.Limits()
	assert.Equal(t, 2, l.DatabaseLimit)
	assert.EqualValues(t, 2, p.Config().MaxConns)
}

func TestSizeThatCanNeverFitIsRefused(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	_, err := pool.Open(ctx, s.cluster.URL(), pool.Options{MaxConns: 5, Instances: 4})
	require.ErrorIs(t, err, pool.ErrDoesNotFit)
	assert.Contains(t, err.Error(), "MaxConns 5 × 4 instance(s) = 20 is more than max_connections")

	_, err = pool.Open(ctx, s.url("app", appPassword, "postgres", ""), pool.Options{MaxConns: 4})
	require.ErrorIs(t, err, pool.ErrDoesNotFit)
	assert.Contains(t, err.Error(), "the role's connection limit (3)")
}

func TestSizeOverWhatIsFreeNowIsAWarning(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	// Another client holds 9 of the 17 connections.
	var held []*pgx.Conn
	hold := func(n int) {
		for range n {
			c, err := pgx.Connect(ctx, s.cluster.URL())
			require.NoError(t, err)
			held = append(held, c)
		}
	}
	hold(9)
	defer func() {
		for _, c := range held {
			_ = c.Close(ctx)
		}
	}()
	p, logs := openOn(t, s.cluster.URL(), pool.Options{MaxConns: 10})
	assert.EqualValues(t, 10, p.Config().MaxConns)
	l, _ := p.Limits()
	assert.GreaterOrEqual(t, l.InUse, 9)
	assert.Equal(t, 1, logs.count("MaxConns 10 is more than the"), logs.String())

	// A derived size takes only what is free: 17 - 15 held = 2.
	hold(6)
	p2, _ := openOn(t, s.cluster.URL(), pool.Options{})
	assert.EqualValues(t, 2, p2.Config().MaxConns)
}

func TestDeadlockFloor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable"
	_, err := pool.Open(ctx, dsn, pool.Options{Lazy: true, MaxConns: 4, Workers: 4, ConnsPerWorker: 2})
	require.ErrorIs(t, err, pool.ErrDoesNotFit)
	assert.Contains(t, err.Error(), "need at least 5")

	p, err := pool.Open(ctx, dsn, pool.Options{Lazy: true, Workers: 8, ConnsPerWorker: 2})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, p.Config().MaxConns, int32(9), "the default size is raised to the floor")
	require.NoError(t, p.Close(ctx))
}

func TestDSNPoolMaxConnsIsAnExplicitSize(t *testing.T) {
	s := scratchCluster(t)
	p, _ := openOn(t, s.cluster.URL()+"&pool_max_conns=3", pool.Options{Instances: 4})
	assert.EqualValues(t, 3, p.Config().MaxConns)
	assert.Equal(t, "MaxConns as configured", p.Config().Sizing)
	_, err := pool.Open(context.Background(), s.cluster.URL()+"&pool_max_conns=3", pool.Options{Instances: 8})
	require.ErrorIs(t, err, pool.ErrDoesNotFit, "3 × 8 is more than 17")
}

// On CockroachDB and YugabyteDB, whose settings and catalogs are not
// PostgreSQL's, Open does not read the limits (the query would fail or
// mean something else) and says so in the sizing; the pool works.
func TestOpenOnServersThatAreNotPostgreSQL(t *testing.T) {
	t.Parallel()
	for name, params := range map[string]map[string]string{
		"CockroachDB": {"server_version": "13.0.0", "crdb_version": "CockroachDB CCL v24.1.0 (fake)"},
		"YugabyteDB":  {"server_version": "11.2-YB-2.20.1.0-b0"},
	} {
		srv, err := fakepg.Start(params, nil)
		require.NoError(t, err)
		p, err := pool.Open(context.Background(), srv.URL(), pool.Options{})
		require.NoError(t, err, name)
		require.Contains(t, p.Config().Sizing, name)
		require.NoError(t, p.Ping(context.Background()), name)
		require.NoError(t, p.Close(context.Background()))
		for _, m := range srv.Seen() {
			require.NotContains(t, m, "max_connections", name)
		}
		srv.Close()
	}
}
