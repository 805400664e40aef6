package pool_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

// A connection held on purpose is not a leak, but a Close that finds it
// still held names it by its label, in the error and in the log.
func TestCloseNamesAConnectionHeldOnPurposeByItsLabel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &logs{}
	p, err := pool.Open(ctx, pgtest.NewDatabase(t), local(pool.Options{Logger: l.logger()}))
	require.NoError(t, err)
	const label = "advisory lock nightly-report"
	c, err := p.Acquire(pool.HeldOnPurpose(ctx, label))
	require.NoError(t, err)
	defer c.Release()

	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = p.Close(closeCtx)
	var ce *pool.CloseError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Held, 1)
	assert.Equal(t, label, ce.Held[0].Label)
	assert.Contains(t, err.Error(), label)
	assert.Contains(t, l.String(), `label="`+label+`"`)
}

// The lifetime jitter is a tenth of the lifetime, whichever way the
// lifetime was set, unless a jitter was chosen.
func TestLifetimeJitterFollowsTheLifetime(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	for name, c := range map[string]struct {
		dsn        string
		configure  func(*pgxpool.Config)
		lifetime   time.Duration
		wantJitter time.Duration
	}{
		"default":             {dsn, nil, time.Hour, 6 * time.Minute},
		"lifetime in dsn":     {dsn + "&pool_max_conn_lifetime=10m", nil, 10 * time.Minute, time.Minute},
		"jitter in dsn":       {dsn + "&pool_max_conn_lifetime=10m&pool_max_conn_lifetime_jitter=5s", nil, 10 * time.Minute, 5 * time.Second},
		"lifetime configured": {dsn, func(c *pgxpool.Config) { c.MaxConnLifetime = 20 * time.Minute }, 20 * time.Minute, 2 * time.Minute},
		"jitter configured":   {dsn, func(c *pgxpool.Config) { c.MaxConnLifetimeJitter = time.Second }, time.Hour, time.Second},
	} {
		p, _ := openOn(t, c.dsn, pool.Options{Configure: c.configure, Lazy: true})
		cfg := p.Pgx().Config()
		assert.Equal(t, c.lifetime, cfg.MaxConnLifetime, name)
		assert.Equal(t, c.wantJitter, cfg.MaxConnLifetimeJitter, name)
	}
}

// silentServer accepts TCP connections and never says a word, like a host
// whose PostgreSQL hangs. It stops when t ends.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// A host that accepts the TCP connection and never answers fails Open by
// ConnectTimeout, with an error that says it timed out.
func TestConnectTimeoutBoundsAHostThatNeverAnswers(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)
	const timeout = 300 * time.Millisecond
	dsn := "postgres://app:s3cr%40t-pw@" + addr + "/orders?sslmode=disable"
	start := time.Now()
	_, err := pool.Open(context.Background(), dsn, pool.Options{ConnectTimeout: timeout})
	took := time.Since(start)
	require.Error(t, err)
	assert.GreaterOrEqual(t, took, timeout)
	assert.Less(t, took, timeout+generous, "Open must end by the connect timeout")
	var ce *pool.ConnectError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "timeout")
	assert.NotContains(t, strings.ToLower(err.Error()), "password")
	assert.NotContains(t, err.Error(), "s3cr")
	assert.NotErrorIs(t, err, pool.ErrInvalid)
}
