package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestDeadIdleConnectionIsFoundByItsPing(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	p, logs := openOn(t, dsn, pool.Options{IdlePing: 20 * time.Millisecond})
	ctx := context.Background()
	// Two idle connections.
	a, err := p.Acquire(ctx)
	require.NoError(t, err)
	b, err := p.Acquire(ctx)
	require.NoError(t, err)
	victim := a.Conn().PgConn().PID()
	for _, c := range []*pgxpool.Conn{a, b} {
		c.Release()
	}
	require.EqualValues(t, 2, p.Stat().TotalConns())

	admin := pgtest.Connect(t, dsn)
	_, err = admin.Exec(ctx, "SELECT pg_terminate_backend($1)", victim)
	require.NoError(t, err)

	// No request touches the pool: the ping finds the dead one.
	require.Eventually(t, func() bool { return p.Stat().TotalConns() == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, logs.count("idle connection failed its ping"), logs.String())
	assert.EqualValues(t, 0, p.Stat().AcquireCount()-2, "found without an acquire")
}
