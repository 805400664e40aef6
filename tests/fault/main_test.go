package fault_test

import (
	"context"
	"net"
	"strconv"
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
	proxy, err = faultproxy.New(net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.ConnConfig.Host = "127.0.0.1"
	cfg.ConnConfig.Port = uint16(proxy.Port())
	cfg.ConnConfig.Fallbacks = nil
	cfg.ConnConfig.TLSConfig = nil // the proxy reads the protocol
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
