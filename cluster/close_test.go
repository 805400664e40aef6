package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/txn"
)

// Tokens that are not PostgreSQL's text form of an LSN (signs, prefixes,
// separators, other digits, megabytes of text) are refused with
// ErrInvalid, in a short error.
func TestHostileTokensAreInvalid(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"-1/0", "+1/0", "0x1/0", "1_0/0", "1/-0", strings.Repeat("A", 1<<20), "１/0", "1/0\n", "0/0/"} {
		_, err := cluster.ResumeSession(tok)
		require.ErrorIs(t, err, cluster.ErrInvalid, "%.20q", tok)
		require.Less(t, len(err.Error()), 300)
	}
}

// A wait for a primary (PrimaryWait of 30 days) ends with ctx's cause when
// ctx is cancelled and with ErrClosed when the Cluster closes; a Session
// read waiting likewise ends with ctx's cause. After Close every call
// returns ErrClosed.
func TestWaitsEndWithCtxAndClose(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	// Only the replica: there is no primary to find.
	c, err := cluster.Open(ctx, []string{r.Replicas[0].URL()}, cluster.Options{PrimaryWait: 30 * 24 * time.Hour, SessionWait: 30 * 24 * time.Hour})
	require.NoError(t, err)
	why := errors.New("caller gave up")
	run := func(ctx context.Context, o txn.Options) chan error {
		done := make(chan error, 1)
		go func() { done <- txn.WithTx(ctx, c, o, func(context.Context, pgx.Tx) error { return nil }) }()
		return done
	}
	for _, o := range []txn.Options{{}, {ReadOnly: true}} {
		s, err := cluster.ResumeSession("FFFFFFFF/FFFFFFFF")
		require.NoError(t, err)
		cctx, cancel := context.WithCancelCause(cluster.WithSession(ctx, s))
		done := run(cctx, o)
		cancel(why)
		require.ErrorIs(t, <-done, why)
	}
	done := run(ctx, txn.Options{})
	require.NoError(t, c.Close(ctx))
	require.ErrorIs(t, <-done, cluster.ErrClosed)
	require.NoError(t, c.Close(ctx))
	_, err = c.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, cluster.ErrClosed)
	_, err = c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	require.ErrorIs(t, err, cluster.ErrClosed)
	require.ErrorIs(t, <-run(ctx, txn.Options{ReadOnly: true}), cluster.ErrClosed)
}

// Close while reads and writes (with a shared Session) are running: the
// transactions in flight finish, every later call fails with ErrClosed and
// nothing else, and no goroutine or connection is left (goleak, Close's
// error).
func TestCloseUnderLoad(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c, err := cluster.Open(ctx, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	s := cluster.NewSession(0)
	require.NoError(t, txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE TABLE l (id int)")
		return err
	}))
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for {
				err := txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{ReadOnly: g%2 == 0}, func(ctx context.Context, tx pgx.Tx) error {
					sql := "INSERT INTO l VALUES (1)"
					if g%2 == 0 {
						sql = "SELECT count(*) FROM l"
					}
					_, err := tx.Exec(ctx, sql)
					return err
				})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, cluster.ErrClosed):
					closed.Add(1)
					return
				default:
					errs <- err
					return
				}
			}
		})
	}
	for ok.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, c.Close(cctx))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call failed with something other than ErrClosed: %v", err)
	}
	require.EqualValues(t, 4, closed.Load())
}

// A replica stopped in the middle of a read: the read runs again, on the
// primary (the replica is out of routing), and succeeds; with the only
// replica down, ReplicasOnly fails reads with ErrNoReplica.
func TestReplicaStoppedMidRead(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c, only := openBoth(t, r, 20*time.Millisecond)
	var attempts []bool
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{ReadOnly: true, Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		if err != nil {
			return err
		}
		attempts = append(attempts, rec)
		if rec {
			r.Replicas[0].Stop()
		}
		_, err = tx.Exec(ctx, "SELECT 1")
		return err
	}))
	require.Equal(t, []bool{true, false}, attempts)
	eventually(t, "the replica is seen down", func() bool {
		for _, n := range only.Nodes() {
			if portOf(t, n.Name) == r.Replicas[0].Port() {
				return !n.Healthy
			}
		}
		return false
	})
	err := txn.WithTx(ctx, only, txn.Options{ReadOnly: true, Retry: fastRetry(5)}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrNoReplica)
}

// One Session shared by goroutines that each write and then read their
// own row, on a replica that applies WAL late: no read misses a write the
// Session made before it (every goroutine finds its rows), under -race.
func TestSessionSharedByGoroutines(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1, "recovery_min_apply_delay=200ms")
	ctx := context.Background()
	// SessionWait long enough for most reads to wait on the replica.
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond, SessionWait: 5 * time.Second})
	s := cluster.NewSession(0)
	sctx := cluster.WithSession(ctx, s)
	require.NoError(t, txn.WithTx(sctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE TABLE mine (g int, i int)")
		return err
	}))
	var wg sync.WaitGroup
	var missed, onReplica atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 8 {
				require.NoError(t, txn.WithTx(sctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO mine VALUES ($1, $2)", g, i)
					return err
				}))
				require.NoError(t, txn.WithTx(sctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
					var n int
					if err := tx.QueryRow(ctx, "SELECT count(*) FROM mine WHERE g = $1", g).Scan(&n); err != nil {
						return err
					}
					if n != i+1 {
						missed.Add(1)
					}
					if rec, err := inRecovery(ctx, tx); err == nil && rec {
						onReplica.Add(1)
					}
					return nil
				}))
			}
		})
	}
	wg.Wait()
	require.Zero(t, missed.Load())
	t.Logf("%d of 32 reads on the replica", onReplica.Load())
}

// Close while a Session read waits (SessionWait of 30 days) for a replica
// to replay a position it never reaches: the wait gives its connection
// back, Close closes the pools without error, and the read fails with
// ErrClosed.
func TestCloseEndsASessionWait(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cluster.Open(ctx, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond, SessionWait: 30 * 24 * time.Hour})
	require.NoError(t, err)
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		return ok && n.Routable
	})
	s, err := cluster.ResumeSession("7FFFFFFF/FFFFFF00")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{ReadOnly: true}, func(context.Context, pgx.Tx) error { return nil })
	}()
	eventually(t, "the read waits", func() bool { return c.Stats().SessionWaits == 1 })
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	require.NoError(t, c.Close(cctx))
	require.ErrorIs(t, <-done, cluster.ErrClosed)
}
