package pool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// generous bounds a wait that should take about the acquire timeout on a
// loaded 2-core machine under -race; it is not a latency assertion.
const generous = 5 * time.Second

// saturate acquires every connection of p, and returns a function that
// releases them; it also runs when t ends.
func saturate(t *testing.T, p *pool.Pool) (release func()) {
	t.Helper()
	ctx := context.Background()
	var conns []*pgxpool.Conn
	var once sync.Once
	release = func() {
		once.Do(func() {
			for _, c := range conns {
				c.Release()
			}
		})
	}
	t.Cleanup(release)
	// Opening a connection counts against the acquire timeout; on a loaded
	// machine one may take longer than a short timeout, so retry.
	fillBy := time.Now().Add(generous)
	for int32(len(conns)) < p.Config().MaxConns {
		c, err := p.Acquire(ctx)
		if errors.Is(err, pool.ErrPoolTimeout) && time.Now().Before(fillBy) {
			continue
		}
		require.NoError(t, err)
		conns = append(conns, c)
	}
	return release
}

func TestAcquireTimeoutOnEveryPath(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	p, logs := open(t, pool.Options{MaxConns: 2, AcquireTimeout: timeout})
	saturate(t, p)
	ctx := context.Background()
	paths := map[string]func() error{
		"Acquire": func() error {
			c, err := p.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			return err
		},
		"BeginTx": func() error {
			tx, err := p.BeginTx(ctx, pgx.TxOptions{})
			if err == nil {
				_ = tx.Rollback(ctx)
			}
			return err
		},
		"Exec": func() error { _, err := p.Exec(ctx, "SELECT 1"); return err },
		"Query": func() error {
			rows, err := p.Query(ctx, "SELECT 1")
			if err == nil {
				rows.Close()
			}
			return err
		},
		"QueryRow": func() error { var n int; return p.QueryRow(ctx, "SELECT 1").Scan(&n) },
		"SendBatch": func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			return p.SendBatch(ctx, b).Close()
		},
		"CopyFrom": func() error {
			_, err := p.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a"}, pgx.CopyFromRows(nil))
			return err
		},
		"txn.WithTx(pool)": func() error {
			return txn.WithTx(ctx, p, txn.Options{Retry: retry.Never()}, func(context.Context, pgx.Tx) error { return nil })
		},
		"txn.WithTx(pgxpool)": func() error {
			return txn.WithTx(ctx, p.Pgx(), txn.Options{Retry: retry.Never()}, func(context.Context, pgx.Tx) error { return nil })
		},
		"pgxpool Exec": func() error { _, err := p.Pgx().Exec(ctx, "SELECT 1"); return err },
	}
	var worst time.Duration
	for name, f := range paths {
		start := time.Now()
		err := f()
		waited := time.Since(start)
		worst = max(worst, waited-timeout)
		require.ErrorIs(t, err, pool.ErrPoolTimeout, name)
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
		var te *pool.TimeoutError
		require.ErrorAs(t, err, &te, name)
		assert.EqualValues(t, 2, te.Max, name)
		assert.EqualValues(t, 2, te.Total, name)
		assert.EqualValues(t, 2, te.Acquired, name)
		assert.EqualValues(t, 0, te.Idle, name)
		assert.GreaterOrEqual(t, te.Waiting, int64(1), name)
		assert.Contains(t, err.Error(), "max 2, total 2, acquired 2, idle 0, waiting", name)
		assert.GreaterOrEqual(t, waited, timeout, name)
		assert.Less(t, waited, timeout+generous, name)
	}
	assert.Equal(t, len(paths), logs.count("acquire timed out"))
	t.Logf("timeout %v; the latest error came %v after it", timeout, worst.Round(time.Millisecond))
}

func TestAcquireTimeoutCountsWaiters(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{MaxConns: 1, AcquireTimeout: time.Second})
	saturate(t, p)
	const waiters = 4
	errs := make(chan error, waiters)
	for range waiters {
		go func() { _, err := p.Exec(context.Background(), "SELECT 1"); errs <- err }()
	}
	maxWaiting := int64(0)
	for range waiters {
		err := <-errs
		var te *pool.TimeoutError
		require.ErrorAs(t, err, &te)
		maxWaiting = max(maxWaiting, te.Waiting)
	}
	// The first to time out saw every waiter but those already gone.
	assert.GreaterOrEqual(t, maxWaiting, int64(2))
}

func TestCallersDeadlineWinsOverTheAcquireTimeout(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{MaxConns: 1, AcquireTimeout: time.Hour})
	saturate(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, pool.ErrPoolTimeout)

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestNegativeAcquireTimeoutWaitsOnTheCallersCtx(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{MaxConns: 1, AcquireTimeout: -1})
	c, err := p.Acquire(context.Background())
	require.NoError(t, err)
	go func() { time.Sleep(50 * time.Millisecond); c.Release() }()
	// No acquire timeout: this waits for the release.
	_, err = p.Exec(context.Background(), "SELECT 1")
	require.NoError(t, err)
	assert.Zero(t, p.Config().AcquireTimeout)
}

// The query's ctx deadline does not shorten the acquire, nor the acquire
// timeout the query: a query longer than AcquireTimeout runs to the end.
func TestAcquireTimeoutDoesNotBoundTheQuery(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{MaxConns: 1, AcquireTimeout: 50 * time.Millisecond})
	saturate(t, p)() // opens the one connection, retrying if that is slow
	_, err := p.Exec(context.Background(), "SELECT pg_sleep(0.2)")
	require.NoError(t, err)
	var n int
	require.NoError(t, p.Pgx().QueryRow(context.Background(), "SELECT 1 FROM pg_sleep(0.1)").Scan(&n))
	var c *pgxpool.Conn
	c, err = p.Acquire(context.Background())
	require.NoError(t, err)
	_, err = c.Exec(context.Background(), "SELECT pg_sleep(0.1)")
	c.Release()
	require.NotErrorIs(t, err, pool.ErrPoolTimeout)
	require.NoError(t, err)
}

// A RequiresNew transaction inside another needs a second connection: on a
// pool of one it would wait forever; the acquire timeout turns that
// self-deadlock into ErrPoolTimeout.
func TestAcquireTimeoutEndsASelfDeadlockOfRequiresNew(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{MaxConns: 1, AcquireTimeout: 100 * time.Millisecond})
	saturate(t, p)() // open the one connection first, retrying if that is slow
	ctx := context.Background()
	err := txn.WithTx(ctx, p, txn.Options{Retry: retry.Never()}, func(ctx context.Context, _ pgx.Tx) error {
		return txn.WithTx(ctx, p, txn.Options{Retry: retry.Never(), RequiresNew: true}, func(context.Context, pgx.Tx) error { return nil })
	})
	require.ErrorIs(t, err, pool.ErrPoolTimeout)
	assert.Contains(t, err.Error(), "max 1, total 1, acquired 1, idle 0")
}
