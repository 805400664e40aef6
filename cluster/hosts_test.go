package cluster

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// A multi-host DSN, in either of libpq's forms, is one node per host: each
// node's DSN names that host and port alone and keeps every other setting,
// and asks for any session, since the checker, not the connect, finds the
// primary.
func TestSplitHostsKeepsEverySettingButTheHost(t *testing.T) {
	t.Parallel()
	type node struct {
		host string
		port uint16
	}
	for name, c := range map[string]struct {
		dsn  string
		want []node
	}{
		"URL authority": {
			"postgres://app:p%40ss@db1:5432,db2:5433/orders?sslmode=disable&target_session_attrs=read-write",
			[]node{{"db1", 5432}, {"db2", 5433}},
		},
		"URL query": {
			"postgresql:///orders?host=db1,db2&port=5432,5433&user=app&password=p%40ss&sslmode=disable",
			[]node{{"db1", 5432}, {"db2", 5433}},
		},
		"keyword": {
			"host=db1,db2 port=5432,5433 user=app password='p@ss' dbname=orders sslmode=disable target_session_attrs=primary",
			[]node{{"db1", 5432}, {"db2", 5433}},
		},
		"keyword, one port for all": {
			"host=db1,db2,db3 port=6000 user=app password='p@ss' dbname=orders sslmode=disable",
			[]node{{"db1", 6000}, {"db2", 6000}, {"db3", 6000}},
		},
	} {
		got, err := splitHosts(c.dsn)
		require.NoError(t, err, name)
		require.Len(t, got, len(c.want), name)
		for i, dsn := range got {
			cfg, err := pgconn.ParseConfig(dsn)
			require.NoError(t, err, "%s: %s", name, dsn)
			require.Equal(t, c.want[i].host, cfg.Host, name)
			require.Equal(t, c.want[i].port, cfg.Port, name)
			require.Empty(t, cfg.Fallbacks, "%s: one host per node", name)
			require.Equal(t, "app", cfg.User, name)
			require.Equal(t, "p@ss", cfg.Password, name)
			require.Equal(t, "orders", cfg.Database, name)
			require.Nil(t, cfg.TLSConfig, "%s: sslmode kept", name)
			require.Nil(t, cfg.ValidateConnect, "%s: any session", name)
		}
	}
	one := "postgres://app@db1:5432/orders?sslmode=disable"
	got, err := splitHosts(one)
	require.NoError(t, err)
	require.Equal(t, []string{one}, got, "one host: as given")
}
