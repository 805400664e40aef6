package pool_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

// slowConnects makes every new connection of cfg take connectDelay longer,
// as a server across a slow network or busy forking would.
func slowConnects(cfg *pgxpool.Config, connectDelay time.Duration) {
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-time.After(connectDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return dial(ctx, network, addr)
	}
}

// spike runs requests concurrent one-query requests at once and returns
// how many connections the pool opened for them.
func spike(t *testing.T, requests int, exec func(context.Context) error, opened func() int64) int64 {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for range requests {
		wg.Go(func() {
			<-start
			errs <- exec(context.Background())
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return opened()
}

// TestConnectionStormIsBounded: 150 ms connects, 2 ms queries, 50
// concurrent requests on a cold pool of 50, the shape of HikariCP's
// published run. pgxpool opens a connection per request; the pool opens a
// few and hands them on as they are released.
func TestConnectionStormIsBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	ctx := context.Background()
	c, err := pgtest.StartClusterWith(ctx)
	if err != nil {
		t.Skipf("needs a throwaway cluster from the local PostgreSQL binaries (max_connections 300): %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	const (
		requests     = 50
		connectDelay = 150 * time.Millisecond
		query        = "SELECT pg_sleep(0.002)"
	)
	p, err := pool.Open(ctx, c.URL(), pool.Options{
		MaxConns:       requests,
		AcquireTimeout: 30 * time.Second,
		Configure:      func(cfg *pgxpool.Config) { slowConnects(cfg, connectDelay) },
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	ours := spike(t, requests, func(ctx context.Context) error { _, err := p.Exec(ctx, query); return err },
		func() int64 { return p.Stat().NewConnsCount() })

	cfg, err := pgxpool.ParseConfig(c.URL())
	require.NoError(t, err)
	cfg.MaxConns = requests
	slowConnects(cfg, connectDelay)
	raw, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	theirs := spike(t, requests, func(ctx context.Context) error { _, err := raw.Exec(ctx, query); return err },
		func() int64 { return raw.Stat().NewConnsCount() })

	t.Logf("connections opened for %d concurrent requests with %v connects: pool %d, pgxpool %d", requests, connectDelay, ours, theirs)
	assert.LessOrEqual(t, ours, int64(10), "the pool opened too many connections in the spike")
	assert.Less(t, ours, theirs)
}
