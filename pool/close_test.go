package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestCloseWaitsForHeldConnections(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	p, err := pool.Open(ctx, dsn, local(pool.Options{}))
	require.NoError(t, err)
	c, err := p.Acquire(ctx)
	require.NoError(t, err)
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		close(released)
		c.Release()
	}()
	closeCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, p.Close(closeCtx))
	select {
	case <-released:
	default:
		t.Fatal("Close returned while a connection was still held")
	}
	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, pool.ErrClosed)
	require.NoError(t, p.Close(closeCtx), "a second Close returns the first result")
}

func TestCloseRefusesNewAcquiresWhileItWaits(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	p, err := pool.Open(ctx, dsn, local(pool.Options{}))
	require.NoError(t, err)
	c, err := p.Acquire(ctx)
	require.NoError(t, err)
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	require.Eventually(t, func() bool {
		_, err := p.Exec(ctx, "SELECT 1")
		return err != nil
	}, 10*time.Second, time.Millisecond)
	_, err = p.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, pool.ErrClosed)
	// The held connection still works until it is released.
	_, err = c.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	c.Release()
	require.NoError(t, <-closed)
}

func TestCloseWithALeakReturnsByItsDeadlineAndNamesTheHolder(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	l := &logs{}
	p, err := pool.Open(ctx, dsn, local(pool.Options{CaptureStacks: true, Logger: l.logger()}))
	require.NoError(t, err)
	leaked, err := p.Acquire(ctx)
	require.NoError(t, err)
	pid := leaked.Conn().PgConn().PID()
	idle, err := p.Acquire(ctx)
	require.NoError(t, err)
	idle.Release()

	const deadline = 200 * time.Millisecond
	closeCtx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	err = p.Close(closeCtx)
	took := time.Since(start)

	require.ErrorIs(t, err, pool.ErrStillHeld)
	var ce *pool.CloseError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Held, 1)
	assert.Equal(t, pid, ce.Held[0].PID)
	assert.Contains(t, ce.Held[0].Stack, "TestCloseWithALeakReturnsByItsDeadlineAndNamesTheHolder")
	assert.Contains(t, err.Error(), "close_test.go")
	assert.GreaterOrEqual(t, took, deadline)
	assert.Less(t, took, deadline+generous, "Close must not wait for the leaked connection")
	assert.Equal(t, 1, l.count("connection still held at close"), l.String())

	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, pool.ErrClosed)

	// The leaked connection's socket was closed: its server session ends.
	admin := pgtest.Connect(t, dsn)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n))
		return n == 0
	}, 10*time.Second, 10*time.Millisecond)
	_, err = leaked.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the leaked connection no longer works")
	// The holder comes back late; the pool's last cleanup ends then.
	leaked.Release()
}
