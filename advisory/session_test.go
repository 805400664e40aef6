package advisory_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/logtest"
)

func TestAcquireHoldsAndReleasesClean(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l, err := advisory.Acquire(b.ctx, b.pool, "nightly-billing", advisory.Options{})
	require.NoError(t, err)
	release(t, l)
	require.Equal(t, "nightly-billing", l.Name())
	require.Zero(t, l.Token(), "no fencing token without Fence")

	key, err := advisory.Key("nightly-billing")
	require.NoError(t, err)
	ls := b.locks(t, "nightly-billing")
	require.Len(t, ls, 1)
	assert.Equal(t, advisory.LockInfo{Name: "nightly-billing", Key: key, PID: l.PID(), Granted: true}, clearClient(ls[0]))
	require.Equal(t, int32(1), b.pool.Stat().AcquiredConns(), "the lock holds one pool connection")

	require.NoError(t, l.Release(b.ctx))
	require.Empty(t, b.locks(t), "pg_locks shows no advisory lock after Release")
	require.True(t, b.alive(t, l.PID()), "the connection went back to the pool, not closed")
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns())
	require.NoError(t, l.Release(b.ctx), "a second Release is harmless")
}

// clearClient drops what depends on how the test connected.
func clearClient(li advisory.LockInfo) advisory.LockInfo {
	li.ApplicationName, li.ClientAddr = "", ""
	return li
}

func TestTryAcquireSaysWhoHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, err := advisory.TryAcquire(b.ctx, b.pool, "migrate", advisory.Options{})
	require.NoError(t, err)
	release(t, a)

	_, err = advisory.TryAcquire(b.ctx, b.pool, "migrate", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	var nae *advisory.NotAcquiredError
	require.ErrorAs(t, err, &nae)
	require.Len(t, nae.Holders, 1)
	require.Equal(t, a.PID(), nae.Holders[0].PID)
	require.Contains(t, err.Error(), "held by pid")

	require.NoError(t, a.Release(b.ctx))
	c, err := advisory.TryAcquire(b.ctx, b.pool, "migrate", advisory.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Release(b.ctx))
}

func TestSharedLocks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r1, err := advisory.TryAcquire(b.ctx, b.pool, "catalog", advisory.Options{Shared: true})
	require.NoError(t, err)
	release(t, r1)
	r2, err := advisory.Acquire(b.ctx, b.pool, "catalog", advisory.Options{Shared: true})
	require.NoError(t, err, "shared holders do not exclude each other")
	release(t, r2)

	_, err = advisory.TryAcquire(b.ctx, b.pool, "catalog", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrNotAcquired, "an exclusive lock waits for shared holders")
	var nae *advisory.NotAcquiredError
	require.ErrorAs(t, err, &nae)
	require.Len(t, nae.Holders, 2)
	for _, h := range nae.Holders {
		require.True(t, h.Shared)
	}

	require.NoError(t, r1.Release(b.ctx))
	require.NoError(t, r2.Release(b.ctx))
	require.Empty(t, b.locks(t))
	w, err := advisory.TryAcquire(b.ctx, b.pool, "catalog", advisory.Options{})
	require.NoError(t, err)
	_, err = advisory.TryAcquire(b.ctx, b.pool, "catalog", advisory.Options{Shared: true})
	require.ErrorIs(t, err, advisory.ErrNotAcquired, "a shared lock waits for an exclusive holder")
	require.NoError(t, w.Release(b.ctx))
}

func TestNamespacedLocksAreApartFromPlainOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	plain, err := advisory.TryAcquire(b.ctx, b.pool, "report", advisory.Options{})
	require.NoError(t, err)
	release(t, plain)
	ns, err := advisory.TryAcquire(b.ctx, b.pool, "report", advisory.Options{Namespace: "billing"})
	require.NoError(t, err, "the pair form is a separate key space")
	release(t, ns)
	_, err = advisory.TryAcquire(b.ctx, b.pool, "report", advisory.Options{Namespace: "billing"})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	other, err := advisory.TryAcquire(b.ctx, b.pool, "report", advisory.Options{Namespace: "shipping"})
	require.NoError(t, err)
	release(t, other)

	hi, lo, err := advisory.PairKey("billing", "report")
	require.NoError(t, err)
	var found bool
	for _, li := range b.locks(t, "billing", "report") {
		if li.Pair && li.NamespaceKey == hi {
			found = true
			require.Equal(t, lo, li.NameKey)
			require.Equal(t, "billing", li.Namespace)
			require.Equal(t, "report", li.Name)
			require.Equal(t, ns.PID(), li.PID)
		}
	}
	require.True(t, found, "Inspect names the namespaced lock")
}

func TestAcquireTimeoutSaysWhoHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, err := advisory.Acquire(b.ctx, b.pool, "scheduler", advisory.Options{})
	require.NoError(t, err)
	release(t, a)

	t.Run("Timeout option", func(t *testing.T) {
		_, err := advisory.Acquire(b.ctx, b.pool, "scheduler", advisory.Options{LockTimeout: 100 * time.Millisecond})
		require.ErrorIs(t, err, advisory.ErrNotAcquired)
		var nae *advisory.NotAcquiredError
		require.ErrorAs(t, err, &nae)
		require.Equal(t, []uint32{a.PID()}, holderPIDs(nae.Holders))
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "the server's lock_timeout ended the wait")
		require.Equal(t, pgerrcode.LockNotAvailable, pgErr.Code)

		// The timeout was set for the lock statement only: the waiting
		// connection went back to the pool without it.
		conns := b.pool.AcquireAllIdle(b.ctx)
		require.NotEmpty(t, conns)
		for _, c := range conns {
			var v string
			err := c.QueryRow(b.ctx, "SHOW lock_timeout").Scan(&v)
			c.Release()
			require.NoError(t, err)
			require.Equal(t, "0", v)
		}
	})
	t.Run("ctx deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(b.ctx, 150*time.Millisecond)
		defer cancel()
		_, err := advisory.Acquire(ctx, b.pool, "scheduler", advisory.Options{})
		require.ErrorIs(t, err, advisory.ErrNotAcquired)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var nae *advisory.NotAcquiredError
		require.ErrorAs(t, err, &nae)
		require.Equal(t, []uint32{a.PID()}, holderPIDs(nae.Holders))
	})

	require.Equal(t, []uint32{a.PID()}, pids(b.locks(t)), "the timed-out waiters hold nothing")
}

func holderPIDs(hs []advisory.Holder) []uint32 {
	var out []uint32
	for _, h := range hs {
		out = append(out, h.PID)
	}
	return out
}

func pids(ls []advisory.LockInfo) []uint32 {
	var out []uint32
	for _, l := range ls {
		out = append(out, l.PID)
	}
	return out
}

// TestAcquireCancelKeepsConnection cancels a waiting Acquire and checks the
// wait ended by a cancel request: the waiting session is still connected,
// idle and holding nothing, back in the pool.
func TestAcquireCancelKeepsConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, err := advisory.Acquire(b.ctx, b.pool, "rebuild", advisory.Options{})
	require.NoError(t, err)
	release(t, a)

	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		_, err := advisory.Acquire(ctx, b.pool, "rebuild", advisory.Options{})
		done <- err
	}()
	waiter := b.waiting(t, "rebuild")
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, advisory.ErrNotAcquired)

	require.True(t, b.alive(t, waiter), "the waiting connection was kept, not closed")
	require.Equal(t, []uint32{a.PID()}, pids(b.locks(t)))
	require.NoError(t, a.Release(b.ctx))
}

func TestAcquireWithDoneCtx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	_, err := advisory.Acquire(ctx, b.pool, "x", advisory.Options{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestReleaseWithDoneCtxClosesTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l, err := advisory.Acquire(b.ctx, b.pool, "export", advisory.Options{})
	require.NoError(t, err)
	release(t, l)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	require.NoError(t, l.Release(ctx), "the lock is released by closing its connection")
	eventually(t, func() bool { return !b.alive(t, l.PID()) }, "the lock's backend to exit")
	require.Empty(t, b.locks(t))
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns())
}

func TestInputValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	_, err := advisory.Acquire(ctx, nil, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.TryAcquire(ctx, b.pool, "", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Acquire(ctx, b.pool, "bad\xffname", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Acquire(ctx, b.pool, "x", advisory.Options{Namespace: "bad\xffspace"})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Acquire(ctx, b.pool, "x", advisory.Options{LockTimeout: -time.Second, CheckInterval: -1})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorContains(t, err, "Timeout is negative")
	require.ErrorContains(t, err, "CheckInterval must be positive")
	_, err = advisory.Acquire(ctx, b.pool, "x", advisory.Options{Shared: true, Fence: true})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorIs(t, advisory.LockTx(ctx, nil, "x", advisory.Options{}), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.WithLock(ctx, b.pool, "x", advisory.Options{}, nil), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.Lead(ctx, b.pool, "x", advisory.Options{}, nil), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.Lead(ctx, nil, "x", advisory.Options{}, func(context.Context, int64) error { return nil }), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.Lead(ctx, b.pool, "", advisory.Options{}, func(context.Context, int64) error { return nil }), advisory.ErrInvalid)
	err = advisory.Lead(ctx, b.pool, "x", advisory.Options{Shared: true}, func(context.Context, int64) error { return nil })
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorContains(t, err, "Lead needs an exclusive lock")
	_, err = advisory.Key("")
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, _, err = advisory.PairKey("ns", "")
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.Empty(t, b.locks(t))
}

func TestObserverSeesWaitAndHold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder()
	a, err := advisory.Acquire(b.ctx, b.pool, "observed", advisory.Options{Observer: rec, Fence: true})
	require.NoError(t, err)
	release(t, a)
	_, err = advisory.TryAcquire(b.ctx, b.pool, "observed", advisory.Options{Observer: rec})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	require.NoError(t, a.Release(b.ctx))

	acq, rel, lost := rec.snapshot()
	require.Len(t, acq, 2)
	require.True(t, acq[0].Acquired)
	require.Equal(t, a.PID(), acq[0].PID)
	require.Equal(t, a.Token(), acq[0].Token)
	require.Positive(t, acq[0].Wait)
	require.False(t, acq[1].Acquired)
	require.True(t, acq[1].Try)
	require.ErrorIs(t, acq[1].Err, advisory.ErrNotAcquired)
	require.Len(t, rel, 1)
	require.Equal(t, "observed", rel[0].Name)
	require.False(t, rel[0].Discarded)
	require.NoError(t, rel[0].Err)
	require.Positive(t, rel[0].Held)
	require.Empty(t, lost)
}

func TestReleaseOfDeadConnectionReportsLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A long interval: the loss is found by Release, not by the watcher.
	l, err := advisory.Acquire(b.ctx, b.pool, "invoice", advisory.Options{CheckInterval: time.Hour})
	require.NoError(t, err)
	release(t, l)
	b.terminate(t, l.PID())
	eventually(t, func() bool { return !b.alive(t, l.PID()) }, "the terminated backend to exit")

	err = l.Release(b.ctx)
	require.ErrorIs(t, err, advisory.ErrLockLost)
	require.NoError(t, l.Release(b.ctx))
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns(), "the dead connection was not kept")
}

func TestErrorsSayWhy(t *testing.T) {
	t.Parallel()
	err := &advisory.NotAcquiredError{Name: "x", Holders: []advisory.Holder{{PID: 7, ApplicationName: "billing", ClientAddr: "10.0.0.2"}}}
	require.Equal(t, `advisory: lock "x" not acquired: held by pid 7 application "billing" from 10.0.0.2`, err.Error())
	lost := &advisory.LostError{Name: "x", Held: time.Second, Err: errors.New("connection reset")}
	require.ErrorIs(t, lost, advisory.ErrLockLost)
	require.Equal(t, `advisory: lock "x" lost after 1s: connection reset`, lost.Error())
}

func TestReleaseWhenServerSaysNotHeld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder()
	l, err := advisory.Acquire(b.ctx, b.pool, "ghost", advisory.Options{CheckInterval: time.Hour, Observer: rec})
	require.NoError(t, err)
	release(t, l)
	require.NoError(t, advisory.UnlockBehind(b.ctx, l))

	err = l.Release(b.ctx)
	require.ErrorIs(t, err, advisory.ErrLockLost, "the work was not protected to the end")
	require.ErrorContains(t, err, "did not hold the lock")
	_, rel, _ := rec.snapshot()
	require.Len(t, rel, 1)
	require.True(t, rel[0].Discarded, "an unconfirmed unlock closes the connection")
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns())
	eventually(t, func() bool { return !b.alive(t, l.PID()) }, "the discarded backend to exit")
}

func TestSlogObserver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var buf logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	obs := advisory.NewSlogObserver(logger)
	l, err := advisory.Acquire(b.ctx, b.pool, "logged", advisory.Options{Observer: obs, CheckInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	release(t, l)
	_, err = advisory.TryAcquire(b.ctx, b.pool, "logged", advisory.Options{Observer: obs})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	b.terminate(t, l.PID())
	<-l.Lost()
	out := buf.String()
	require.Contains(t, out, `level=DEBUG msg="advisory: lock acquired" name=logged`)
	require.Contains(t, out, `level=INFO msg="advisory: lock not acquired" name=logged`)
	require.Contains(t, out, `level=ERROR msg="advisory: lock lost" name=logged`)
	require.NotContains(t, out, "postgres://", "no connection string in the logs")
}
