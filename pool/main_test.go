package pool_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The pool goes wherever txkit takes a Beginner or a Querier.
var (
	_ txn.Beginner = (*pool.Pool)(nil)
	_ txn.Querier  = (*pool.Pool)(nil)
)

// logs is a slog handler's output, safe to read while the pool writes.
type logs struct{ logtest.Buffer }

// count is how many records hold msg.
func (l *logs) count(msg string) int { return strings.Count(l.String(), msg) }

// waitFor waits until a record holds msg, failing t after a generous bound.
func (l *logs) waitFor(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.count(msg) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log record %q; logged:\n%s", msg, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a pool on a fresh database, closed when t ends; opts.Logger
// is set to the returned logs unless given.
func open(t *testing.T, opts pool.Options) (*pool.Pool, *logs) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	return openOn(t, dsn, opts)
}

func openOn(t *testing.T, dsn string, opts pool.Options) (*pool.Pool, *logs) {
	t.Helper()
	l := &logs{}
	if opts.Logger == nil {
		opts.Logger = l.logger()
	}
	p, err := pool.Open(context.Background(), dsn, local(opts))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, l
}

// withDatabase is dsn (a URL) with its database replaced.
func withDatabase(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Path = "/" + db
	return u.String()
}

// local lets the tests run against a TEST_DATABASE_URL on another host
// without TLS; the TLS floor has tests of its own, which do not use it.
func local(o pool.Options) pool.Options {
	o.AllowInsecure = true
	return o
}
