package advisory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
)

// lossBound is how long a test waits for a loss to be seen. With a 50ms
// check interval it is seen in well under a second; the bound only turns a
// hang into a failure.
const lossBound = 10 * time.Second

func TestLockLossClosesLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder()
	l, err := advisory.Acquire(b.ctx, b.pool, "billing-run", advisory.Options{CheckInterval: 50 * time.Millisecond, Observer: rec})
	require.NoError(t, err)
	release(t, l)
	require.NoError(t, l.Err())
	select {
	case <-l.Lost():
		t.Fatal("Lost closed while the lock is held")
	default:
	}

	b.terminate(t, l.PID())
	select {
	case <-l.Lost():
	case <-time.After(lossBound):
		t.Fatal("Lost was not closed after the holding backend was terminated")
	}
	require.ErrorIs(t, l.Err(), advisory.ErrLockLost)
	_, _, lost := rec.snapshot()
	require.Len(t, lost, 1)
	require.ErrorIs(t, lost[0].Err, advisory.ErrLockLost)
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns(), "the dead connection left the pool at once")

	// The lock is free for the next holder, and Release of the lost lock
	// says it was lost.
	next, err := advisory.TryAcquire(b.ctx, b.pool, "billing-run", advisory.Options{})
	require.NoError(t, err)
	require.NoError(t, next.Release(b.ctx))
	require.ErrorIs(t, l.Release(b.ctx), advisory.ErrLockLost)
	require.NoError(t, l.Release(b.ctx))
}

func TestWithLockLossCancelsFn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{})
	var cause error
	errc := make(chan error, 1)
	go func() {
		errc <- advisory.WithLock(b.ctx, b.pool, "report", advisory.Options{CheckInterval: 50 * time.Millisecond}, func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		})
	}()
	<-started
	b.terminate(t, b.holder(t, "report"))

	var err error
	select {
	case err = <-errc:
	case <-time.After(lossBound):
		t.Fatal("WithLock did not return after its lock was lost")
	}
	require.ErrorIs(t, cause, advisory.ErrLockLost, "fn's ctx was cancelled with the loss as its cause")
	require.ErrorIs(t, err, advisory.ErrLockLost)
	require.ErrorIs(t, err, context.Canceled, "fn's own error is kept")
	require.Empty(t, b.locks(t))
}

// TestWithLockReportsLossEvenIfFnSucceeded: fn that ignores its ctx and
// returns nil after the lock was lost still gets ErrLockLost, because its
// work was not protected to the end.
func TestWithLockReportsLossEvenIfFnSucceeded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := advisory.WithLock(b.ctx, b.pool, "compact", advisory.Options{CheckInterval: 50 * time.Millisecond}, func(ctx context.Context) error {
		b.terminate(t, b.holder(t, "compact"))
		<-ctx.Done() // the loss is seen
		return nil
	})
	require.ErrorIs(t, err, advisory.ErrLockLost)
}

// TestFencingRejectsStaleHolderAfterLoss is the fencing pattern of the
// package documentation: a holder that lost its lock without noticing
// cannot overwrite the work of the holder after it.
func TestFencingRejectsStaleHolderAfterLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, `CREATE TABLE report (id int PRIMARY KEY, body text NOT NULL, fence bigint NOT NULL);
		INSERT INTO report VALUES (1, 'empty', 0)`)
	require.NoError(t, err)
	write := func(token int64, body string) int64 {
		tag, err := b.pool.Exec(b.ctx, "UPDATE report SET body = $2, fence = $3 WHERE id = $1 AND fence <= $3", 1, body, token)
		require.NoError(t, err)
		return tag.RowsAffected()
	}

	// The first holder's session dies; it has not noticed (its interval
	// is long) and still believes it holds the lock.
	old, err := advisory.Acquire(b.ctx, b.pool, "report", advisory.Options{Fence: true, CheckInterval: time.Hour})
	require.NoError(t, err)
	release(t, old)
	require.Equal(t, int64(1), write(old.Token(), "old holder, first write"))
	b.terminate(t, old.PID())

	next, err := advisory.Acquire(b.ctx, b.pool, "report", advisory.Options{Fence: true})
	require.NoError(t, err)
	release(t, next)
	require.Greater(t, next.Token(), old.Token(), "tokens only grow")
	require.Equal(t, int64(1), write(next.Token(), "new holder"))

	require.Equal(t, int64(0), write(old.Token(), "old holder, late write"), "the stale holder's write is refused")
	var body string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT body FROM report").Scan(&body))
	require.Equal(t, "new holder", body)
	require.NoError(t, next.Release(b.ctx))
	require.ErrorIs(t, old.Release(b.ctx), advisory.ErrLockLost)
}

func TestFenceTokensGrowPerKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var prev int64
	for range 5 {
		l, err := advisory.Acquire(b.ctx, b.pool, "a", advisory.Options{Fence: true})
		require.NoError(t, err)
		require.Greater(t, l.Token(), prev)
		prev = l.Token()
		require.NoError(t, l.Release(b.ctx))
	}
	other, err := advisory.Acquire(b.ctx, b.pool, "b", advisory.Options{Fence: true, Namespace: "n"})
	require.NoError(t, err)
	require.Equal(t, int64(1), other.Token(), "each key has its own sequence")
	require.NoError(t, other.Release(b.ctx))

	// A failed try takes no token.
	held, err := advisory.Acquire(b.ctx, b.pool, "a", advisory.Options{Fence: true})
	require.NoError(t, err)
	_, err = advisory.TryAcquire(b.ctx, b.pool, "a", advisory.Options{Fence: true})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	require.NoError(t, held.Release(b.ctx))
	again, err := advisory.Acquire(b.ctx, b.pool, "a", advisory.Options{Fence: true})
	require.NoError(t, err)
	require.Equal(t, held.Token()+1, again.Token())
	require.NoError(t, again.Release(b.ctx))
}

func TestFenceTableCreatedConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *pgxpool.Config) { c.MaxConns = 8 })
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			l, err := advisory.Acquire(b.ctx, b.pool, "first-"+string(rune('a'+i)), advisory.Options{Fence: true})
			if err == nil {
				err = l.Release(b.ctx)
			}
			errc <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errc)
	}
	require.NoError(t, advisory.CreateFenceTable(b.ctx, b.pool), "creating it again is harmless")
}

var errSentinel = errors.New("sentinel")

func TestWithLockReturnsFnErrorAndReleases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := advisory.WithLock(b.ctx, b.pool, "job", advisory.Options{}, func(ctx context.Context) error {
		return errSentinel
	})
	require.ErrorIs(t, err, errSentinel)
	require.Empty(t, b.locks(t))

	require.Panics(t, func() {
		_ = advisory.WithLock(b.ctx, b.pool, "job", advisory.Options{}, func(ctx context.Context) error { panic("boom") })
	})
	require.Empty(t, b.locks(t), "a panic in fn releases the lock")
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns())
}

// TestLossIsSeenWithinAboutOneInterval: a connection that breaks (here
// its backend is terminated) is seen lost at the next check, or the one
// after if one was under way as it broke: within about one interval. One
// that stops answering (a stalled network) is given up when a check has
// waited its timeout, the interval but at least a second. The writes on
// the lock's connection count the checks exactly; the time bounds are
// loose, for a loaded machine, but still far below what a watcher that
// missed checks would take.
func TestLossIsSeenWithinAboutOneInterval(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	for _, c := range []struct {
		name  string
		kill  func(t *testing.T, b *bundle, p *faultproxy.Proxy, l *advisory.Lock)
		bound time.Duration
	}{
		{"terminated", func(t *testing.T, b *bundle, _ *faultproxy.Proxy, l *advisory.Lock) { b.terminate(t, l.PID()) }, 30 * interval},
		{"unanswered", func(_ *testing.T, _ *bundle, p *faultproxy.Proxy, _ *advisory.Lock) { p.Stall(true) }, time.Second + 30*interval},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// The lock's pool reaches the server through a proxy and
			// counts the writes on the lock's connection: one per check.
			// The test's own statements go through b.pool.
			cfg := b.pool.Config()
			proxy, err := faultproxy.Interpose(&cfg.ConnConfig.Config)
			require.NoError(t, err)
			t.Cleanup(func() {
				proxy.Stall(false) // a stalled link would hold Close up
				_ = proxy.Close()
			})
			rt := pgtest.CountRoundTrips(cfg)
			pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			l, err := advisory.Acquire(b.ctx, pool, "watched", advisory.Options{CheckInterval: interval})
			require.NoError(t, err)
			release(t, l)

			rt.Reset()
			start := time.Now()
			c.kill(t, b, proxy, l)
			select {
			case <-l.Lost():
			case <-time.After(lossBound):
				t.Fatal("Lost was not closed after the connection died")
			}
			took := time.Since(start)
			require.ErrorIs(t, l.Err(), advisory.ErrLockLost)
			require.LessOrEqual(t, rt.Load(), int64(3), "the first check after the connection died, or the next, saw it (and the close may write)")
			require.Less(t, took, c.bound, "Lost closed %v after the connection died, with a %v interval", took, interval)
		})
	}
}

// TestReleaseDoesNotCloseLost: Lost reports a loss, and a release is not
// one, whether the unlock is sent or the connection is closed instead.
func TestReleaseDoesNotCloseLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	done, cancel := context.WithCancel(b.ctx)
	cancel()
	for name, ctx := range map[string]context.Context{"unlock": b.ctx, "close": done} {
		l, err := advisory.Acquire(b.ctx, b.pool, "released-"+name, advisory.Options{CheckInterval: advisory.MinCheckInterval})
		require.NoError(t, err)
		require.NoError(t, l.Release(ctx), name)
		// Release has stopped the watcher: nothing closes Lost later.
		select {
		case <-l.Lost():
			t.Fatalf("%s: Lost closed by Release", name)
		default:
		}
		require.NoError(t, l.Err(), name)
	}
	// The closed connection's backend exits on its own schedule: its lock
	// goes with it, shortly after Release returned.
	require.Eventually(t, func() bool { return len(b.locks(t)) == 0 }, 10*time.Second, 10*time.Millisecond,
		"locks still held: %v", b.locks(t))
}
