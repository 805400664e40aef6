package fault_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// TestServerRestartDuringARun restarts PostgreSQL under a running workload:
// every WithTx either succeeds (and its row is there) or fails cleanly, no
// call outlives its deadline by more than the COMMIT grace, and the pool
// serves again once the server is back.
func TestServerRestartDuringARun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, err := pgtest.StartCluster(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cluster.Close() })

	cfg, err := pgxpool.ParseConfig(cluster.URL())
	require.NoError(t, err)
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, "CREATE TABLE events (id bigint PRIMARY KEY)")
	require.NoError(t, err)

	const callTimeout = 3 * time.Second
	var (
		nextID    atomic.Int64
		mu        sync.Mutex
		succeeded []int64
		failures  = map[string]int{}
		overdue   atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := nextID.Add(1)
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				start := time.Now()
				err := txn.WithTx(cctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO events VALUES ($1)", id)
					return err
				})
				cancel()
				// Only the wait for COMMIT's answer (2s) and the question
				// about its outcome (2s) may run past the deadline.
				if time.Since(start) > callTimeout+5*time.Second {
					overdue.Add(1)
				}
				mu.Lock()
				switch {
				case err == nil:
					succeeded = append(succeeded, id)
				case errors.Is(err, txn.ErrCommitUnknown):
					failures["unknown"]++
				case errors.Is(err, context.DeadlineExceeded):
					failures["deadline"]++
				default:
					failures["error"]++
				}
				mu.Unlock()
			}
		}()
	}

	waitFor := func(n int) {
		for {
			mu.Lock()
			got := len(succeeded)
			mu.Unlock()
			if got >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(50)
	// A session advisory lock held across the restart must report its loss.
	lock, err := advisory.Acquire(ctx, pool, "restart-test", advisory.Options{CheckInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, cluster.Restart(ctx))
	select {
	case <-lock.Lost():
		require.ErrorIs(t, lock.Err(), advisory.ErrLockLost)
	case <-time.After(30 * time.Second):
		t.Fatal("the advisory lock did not report its loss after the server restarted")
	}
	// Release still cleans up, and says the lock had been lost.
	require.ErrorIs(t, lock.Release(ctx), advisory.ErrLockLost)
	mu.Lock()
	before := len(succeeded)
	mu.Unlock()
	waitFor(before + 50) // the workload recovers
	close(stop)
	wg.Wait()

	require.Zero(t, overdue.Load(), "a call outlived its deadline")
	// Every reported success is in the table.
	rows, err := pool.Query(ctx, "SELECT id FROM events")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	have := map[int64]bool{}
	for _, id := range ids {
		have[id] = true
	}
	for _, id := range succeeded {
		require.True(t, have[id], "event %d reported committed is missing", id)
	}
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
	t.Logf("succeeded %d, failures %v", len(succeeded), failures)
}
