package cluster

import (
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/pool"
)

// splitHosts turns a DSN naming several hosts into one DSN per host. A
// DSN with one host is returned as it is. The URL form is split
// ("postgres://u@h1:5432,h2:5433/db?x" gives "postgres://u@h1:5432/db?x"
// and "postgres://u@h2:5433/db?x"); a keyword DSN with several hosts is
// refused: give one DSN per node.
func splitHosts(dsn string) ([]string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// pool.Open reports it, without the password.
		return []string{dsn}, nil //nolint:nilerr // reported where the pool opens
	}
	hosts := map[string]bool{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))): true}
	for _, f := range cfg.Fallbacks {
		hosts[net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port)))] = true
	}
	if len(hosts) == 1 {
		return []string{dsn}, nil
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, invalid.Errorf(ErrInvalid, "%s names several hosts in keyword form: give one DSN per node, or the URL form", pool.Redact(dsn))
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hostlist := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hostlist = authority[:at+1], authority[at+1:]
	}
	var out []string
	for _, h := range strings.Split(hostlist, ",") {
		if h == "" {
			return nil, invalid.Errorf(ErrInvalid, "%s has an empty host", pool.Redact(dsn))
		}
		out = append(out, scheme+"://"+userinfo+h+tail)
	}
	return out, nil
}
