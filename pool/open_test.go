package pool_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestOpenSetsSessionDefaultsInTheStartupMessage(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	p, _ := open(t, pool.Options{
		ApplicationName:  "orders-api",
		StatementTimeout: 3 * time.Second,
		LockTimeout:      time.Second,
		Configure:        func(c *pgxpool.Config) { rt = pgtest.CountRoundTrips(c) },
	})
	ctx := context.Background()
	rt.Reset() // Open's own connection, which read the limits
	c, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	// trust auth over plain TCP: the startup message is the only write
	// before the first query, so no SET followed the connect.
	require.EqualValues(t, 1, rt.Load(), "writes to open a connection")
	for setting, want := range map[string]string{
		"application_name":                    "orders-api",
		"statement_timeout":                   "3s",
		"lock_timeout":                        "1s",
		"idle_in_transaction_session_timeout": "1min",
		"tcp_keepalives_idle":                 "30",
		"tcp_keepalives_count":                "3",
	} {
		var got string
		require.NoError(t, c.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got))
		assert.Equal(t, want, got, setting)
	}
}

func TestOpenKeepsSettingsTheDSNChose(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t) + "&idle_in_transaction_session_timeout=0&application_name=from-dsn"
	p, _ := openOn(t, dsn, pool.Options{ApplicationName: "from-options"})
	var idle, app string
	require.NoError(t, p.QueryRow(context.Background(), "SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')").Scan(&idle, &app))
	assert.Equal(t, "0", idle)
	assert.Equal(t, "from-dsn", app)
}

func TestOpenFailsAtOnceOnAWrongHostOrDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)

	_, err := pool.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", pool.Options{})
	require.Error(t, err)
	var ce *pool.ConnectError
	require.ErrorAs(t, err, &ce)
	var raw *pgconn.ConnectError
	require.NotErrorAs(t, err, &raw, "the error must not reach pgconn's ConnectError: it carries the password")

	_, err = pool.Open(ctx, withDatabase(t, dsn, "no_such_database_here"), local(pool.Options{}))
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, pgerrcode.InvalidCatalogName, pgErr.Code)
	assert.NotErrorAs(t, err, &raw)
}

func TestLazyOpenConnectsOnFirstUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := pool.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", pool.Options{Lazy: true})
	require.NoError(t, err)
	require.Error(t, p.Ping(ctx))
	require.NoError(t, p.Close(ctx))

	lazy, _ := open(t, pool.Options{Lazy: true})
	require.NoError(t, lazy.Ping(ctx))
	_, ok := lazy.Limits()
	assert.False(t, ok, "a lazy open reads no limits")
}

func TestOpenRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, c := range map[string]struct {
		dsn  string
		opts pool.Options
	}{
		"negative statement timeout":       {"postgres://127.0.0.1/x", pool.Options{StatementTimeout: -time.Second}},
		"lock timeout beyond the server's": {"postgres://127.0.0.1/x", pool.Options{LockTimeout: 30 * 24 * time.Hour}},
		"negative instances":               {"postgres://127.0.0.1/x", pool.Options{Instances: -1}},
		"dsn":                              {"postgres://u:hunter2@127.0.0.1:notaport/x", pool.Options{}},
		"keyword/value dsn":                {"host=127.0.0.1 password=hunter2 port=notaport", pool.Options{}},
	} {
		_, err := pool.Open(ctx, c.dsn, c.opts)
		require.ErrorIs(t, err, pool.ErrInvalid, name)
		assert.NotContains(t, err.Error(), "hunter2", name)
		var pce *pgconn.ParseConfigError
		assert.NotErrorAs(t, err, &pce, "%s: errors.As must not reach the connection string", name)
	}
}

func TestPgxpoolSettingsDefaults(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{})
	cfg := p.Pgx().Config()
	assert.Equal(t, pool.DefaultPingTimeout, cfg.PingTimeout)
	assert.Equal(t, time.Hour, cfg.MaxConnLifetime)
	assert.Equal(t, 6*time.Minute, cfg.MaxConnLifetimeJitter)
	assert.Equal(t, pool.DefaultConnectTimeout, cfg.ConnConfig.ConnectTimeout)
	assert.Empty(t, cfg.ConnConfig.Password, "trust auth: no password, and none was invented")

	withDSN, _ := openOn(t, pgtest.NewDatabase(t)+"&connect_timeout=3&pool_ping_timeout=1s", pool.Options{})
	assert.Equal(t, 3*time.Second, withDSN.Pgx().Config().ConnConfig.ConnectTimeout, "the DSN wins")
	assert.Equal(t, time.Second, withDSN.Pgx().Config().PingTimeout)
}

// With no ApplicationName and none in the DSN, connections carry the
// program's name, so pg_stat_activity shows who they belong to.
func TestOpenNamesConnectionsAfterTheProgram(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{})
	var app string
	require.NoError(t, p.QueryRow(context.Background(), "SELECT current_setting('application_name')").Scan(&app))
	require.Equal(t, filepath.Base(os.Args[0]), app)
	require.NotEmpty(t, app)
}
