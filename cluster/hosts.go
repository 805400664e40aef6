package cluster

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// splitHosts turns a DSN naming several hosts (libpq's multi-host form)
// into one DSN per host, in the order given. A DSN with one host is
// returned as it is. Both forms are split, and so is a URL that lists its
// hosts in ?host= and ?port=: each node's DSN is the original with the
// node's host and port set after everything else (a later setting wins in
// both forms), so user, database, TLS and every other setting stay as
// given. target_session_attrs is set to any: a node is a node whatever its
// role, and the checker, not the connect, finds the primary.
func splitHosts(dsn string) ([]string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// pool.Open reports it, without the password.
		return []string{dsn}, nil //nolint:nilerr // reported where the pool opens
	}
	type hostPort struct{ host, port string }
	var nodes []hostPort
	seen := map[hostPort]bool{}
	add := func(host string, port uint16) {
		hp := hostPort{host, strconv.Itoa(int(port))}
		if !seen[hp] {
			seen[hp] = true
			nodes = append(nodes, hp)
		}
	}
	add(cfg.Host, cfg.Port)
	for _, f := range cfg.Fallbacks {
		add(f.Host, f.Port)
	}
	if len(nodes) == 1 {
		return []string{dsn}, nil
	}
	out := make([]string, 0, len(nodes))
	u, urlErr := url.Parse(dsn)
	isURL := urlErr == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
	for _, n := range nodes {
		if isURL {
			// Set, not added: pgconn reads the first of repeated query
			// settings, and a query host or port overrides the authority's.
			nu := *u
			q := nu.Query()
			q.Set("host", n.host)
			q.Set("port", n.port)
			q.Set("target_session_attrs", "any")
			nu.RawQuery = q.Encode()
			out = append(out, nu.String())
			continue
		}
		out = append(out, dsn+" host="+quoteKeyword(n.host)+" port="+n.port+" target_session_attrs=any")
	}
	return out, nil
}

// quoteKeyword quotes a value for a keyword/value DSN.
func quoteKeyword(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
