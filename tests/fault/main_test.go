package fault_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// proxiedPool returns a pool that reaches a fresh database through a fault
// proxy, and a pool that reaches it directly (for checks and for
// terminating backends).
func proxiedPool(t *testing.T, maxConns int32) (proxied, direct *pgxpool.Pool, proxy *faultproxy.Proxy) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	proxy, err = faultproxy.Interpose(&cfg.ConnConfig.Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "txkit-fault-proxied"
	proxied, err = pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.Zero(t, pgtest.SettledAcquiredConns(proxied), "proxied pool leaked a connection")
		proxied.Close()
	})
	direct = pgtest.NewPoolOn(t, dsn)
	return proxied, direct, proxy
}
