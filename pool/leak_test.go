package pool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
)

const (
	leakMsg     = "connection held longer than the leak threshold"
	returnedMsg = "leaked connection returned"
)

func TestLeakIsReportedOnceWithTheStackThatAcquired(t *testing.T) {
	t.Parallel()
	const threshold = 50 * time.Millisecond
	p, logs := open(t, pool.Options{LeakThreshold: threshold, CaptureStacks: true})
	c, err := p.Acquire(context.Background())
	require.NoError(t, err)
	logs.waitFor(t, leakMsg)
	// Several more scans pass; the leak is not reported again.
	time.Sleep(10 * threshold)
	c.Release()
	logs.waitFor(t, returnedMsg)
	out := logs.String()
	assert.Equal(t, 1, logs.count(leakMsg), out)
	assert.Equal(t, 1, logs.count(returnedMsg), out)
	assert.Contains(t, out, "TestLeakIsReportedOnceWithTheStackThatAcquired", "the stack names the acquiring function")
	assert.Contains(t, out, "leak_test.go")
	assert.NotContains(t, out, "pgxpool.(*Pool).Acquire", "pgxpool's own frames are left out")
}

func TestLeakReportsCoverEveryWayToHoldAConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ways := map[string]func(p *pool.Pool) (release func()){
		"Query with rows left open": func(p *pool.Pool) func() {
			rows, err := p.Query(ctx, "SELECT generate_series(1, 3)")
			require.NoError(t, err)
			return rows.Close
		},
		"SendBatch left open": func(p *pool.Pool) func() {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			br := p.SendBatch(ctx, b)
			return func() { _ = br.Close() }
		},
		"BeginTx not ended": func(p *pool.Pool) func() {
			tx, err := p.BeginTx(ctx, pgx.TxOptions{})
			require.NoError(t, err)
			return func() { _ = tx.Rollback(ctx) }
		},
		"Hijack": func(p *pool.Pool) func() {
			c, err := p.Acquire(ctx)
			require.NoError(t, err)
			conn := c.Hijack()
			return func() { _ = conn.Close(ctx) }
		},
		"Acquire on the pgxpool.Pool": func(p *pool.Pool) func() {
			c, err := p.Pgx().Acquire(ctx)
			require.NoError(t, err)
			return c.Release
		},
	}
	for name, hold := range ways {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, logs := open(t, pool.Options{LeakThreshold: 30 * time.Millisecond})
			release := hold(p)
			logs.waitFor(t, leakMsg)
			require.Len(t, p.Held(), 1)
			release()
			require.Eventually(t, func() bool { return len(p.Held()) == 0 }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, 1, logs.count(leakMsg))
		})
	}
}

func TestConnectionsHeldOnPurposeAreNotReported(t *testing.T) {
	t.Parallel()
	p, logs := open(t, pool.Options{LeakThreshold: 20 * time.Millisecond})
	c, err := p.Acquire(pool.HeldOnPurpose(context.Background(), "session advisory lock jobs"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	held := p.Held()
	require.Len(t, held, 1)
	assert.Equal(t, "session advisory lock jobs", held[0].Label)
	c.Release()
	assert.Zero(t, logs.count(leakMsg), logs.String())
}

func TestLeakFreeRunReportsNothing(t *testing.T) {
	t.Parallel()
	// The threshold is far above any single use even on a loaded machine
	// under -race, and far below the run's length.
	p, logs := open(t, pool.Options{LeakThreshold: 2 * time.Second, CaptureStacks: true})
	ctx := context.Background()
	const workers, each = 8, 1250 // 10,000 acquisitions
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var err error
				switch (w + i) % 4 {
				case 0:
					var c interface{ Release() }
					c, err = p.Acquire(ctx)
					if err == nil {
						c.Release()
					}
				case 1:
					_, err = p.Exec(ctx, "SELECT 1")
				case 2:
					var n int
					err = p.QueryRow(ctx, "SELECT 1").Scan(&n)
				case 3:
					var rows pgx.Rows
					rows, err = p.Query(ctx, "SELECT 1")
					if err == nil {
						rows.Close()
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 10_000, p.Stat().AcquireCount(), "acquisitions")
	assert.Empty(t, p.Held())
	assert.Zero(t, logs.count(leakMsg), logs.String())
}
