package pool

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is what an open [Pool] runs with, for logs and health pages. It
// holds no secret by construction: it has no password field, and it
// implements slog.LogValuer and fmt.Stringer.
type Config struct {
	Hosts           []string // host:port of each address tried, in order
	Database, User  string
	TLS             string // "verify-full", "verify-ca", "require", "off", "off then require" ...
	ApplicationName string
	MaxConns        int32
	Instances       int
	AcquireTimeout  time.Duration // 0: none
	LeakThreshold   time.Duration // 0: leak detection off
	CaptureStacks   bool
	Lazy            bool
	// Sizing says how MaxConns was chosen.
	Sizing string
}

func describeConn(cc *pgconn.Config) (hosts []string, tlsDesc string) {
	var levels []string
	add := func(host string, port uint16, level string) {
		hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(int(port))))
		levels = append(levels, level)
	}
	add(cc.Host, cc.Port, tlsLevel(cc.TLSConfig))
	for _, f := range cc.Fallbacks {
		add(f.Host, f.Port, tlsLevel(f.TLSConfig))
	}
	hosts = uniq(hosts)
	return hosts, strings.Join(uniq(levels), " then ")
}

func uniq(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// LogValue implements slog.LogValuer.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("hosts", strings.Join(c.Hosts, ",")),
		slog.String("database", c.Database),
		slog.String("user", c.User),
		slog.String("tls", c.TLS),
		slog.String("application_name", c.ApplicationName),
		slog.Int("max_conns", int(c.MaxConns)),
		slog.Int("instances", c.Instances),
		slog.Duration("acquire_timeout", c.AcquireTimeout),
		slog.Duration("leak_threshold", c.LeakThreshold),
		slog.Bool("capture_stacks", c.CaptureStacks),
		slog.Bool("lazy", c.Lazy),
		slog.String("sizing", c.Sizing),
	)
}

func (c Config) String() string {
	return fmt.Sprintf("hosts=%s database=%s user=%s tls=%s max_conns=%d instances=%d acquire_timeout=%v leak_threshold=%v (%s)",
		strings.Join(c.Hosts, ","), c.Database, c.User, c.TLS, c.MaxConns, c.Instances, c.AcquireTimeout, c.LeakThreshold, c.Sizing)
}
