package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgbouncer"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestBehindAPoolerTheServersLimitIsNotApplied(t *testing.T) {
	t.Parallel()
	url := pgbouncer.Start(t, pgtest.NewDatabase(t), pgbouncer.Transaction)
	p, logs := openOn(t, url, pool.Options{
		Instances:                1000, // would leave no room under the server's limit
		IdleInTransactionTimeout: -1,   // PgBouncer refuses startup settings it does not track
		KeepAlive:                -1,
		Configure:                func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec },
	})
	l, ok := p.Limits()
	require.True(t, ok)
	assert.True(t, l.BehindPooler)
	assert.Contains(t, p.Config().Sizing, "connection pooler")
	assert.Equal(t, 1, logs.count("connects through a connection pooler"), logs.String())
	require.NoError(t, p.Ping(context.Background()))
}
