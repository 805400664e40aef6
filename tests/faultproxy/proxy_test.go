package faultproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connectThrough(t *testing.T) (*faultproxy.Proxy, func() (*pgx.Conn, error)) {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	p, err := faultproxy.Interpose(&cfg.Config)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p, func() (*pgx.Conn, error) {
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err == nil {
			t.Cleanup(func() { _ = c.Close(context.Background()) })
		}
		return c, err
	}
}

func TestCutAllEndsEveryConnection(t *testing.T) {
	t.Parallel()
	p, connect := connectThrough(t)
	c, err := connect()
	require.NoError(t, err)
	require.Equal(t, 1, p.Open())
	p.CutAll()
	// Counted before the failed Exec below: on that error pgx sends a
	// cancel request on a new connection of its own, through the proxy,
	// which the count would race.
	require.Zero(t, p.Open())
	_, err = c.Exec(context.Background(), "SELECT 1")
	require.Error(t, err)
	// New connections still go through.
	c2, err := connect()
	require.NoError(t, err)
	_, err = c2.Exec(context.Background(), "SELECT 1")
	require.NoError(t, err)
}

func TestStallHoldsBytesUntilResumed(t *testing.T) {
	t.Parallel()
	p, connect := connectThrough(t)
	c, err := connect()
	require.NoError(t, err)
	p.Stall(true)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), "SELECT 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a query completed through a stalled proxy: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.Stall(false)
	require.NoError(t, <-done)
}

func TestLatencyDelaysEachRoundTrip(t *testing.T) {
	t.Parallel()
	p, connect := connectThrough(t)
	c, err := connect()
	require.NoError(t, err)
	p.SetLatency(50 * time.Millisecond)
	start := time.Now()
	_, err = c.Exec(context.Background(), "SELECT 1")
	require.NoError(t, err)
	// A lower bound only: the bytes cannot arrive before the delay.
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "one delay each way")
}
