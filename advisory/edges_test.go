package advisory_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/retry"
)

// farCtx is a ctx whose deadline is 30 days away, beyond the longest
// lock_timeout PostgreSQL holds. It is cancelled when the test ends.
func farCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*24*time.Hour)
	t.Cleanup(cancel)
	return ctx
}

// A deadline beyond the server's limit sets no lock_timeout, rather than
// one the server refuses (22023): every way of taking a lock works.
func TestFarDeadlineSetsNoTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := farCtx(t)

	l, err := advisory.Acquire(ctx, b.pool, "far", advisory.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	l, err = advisory.TryAcquire(ctx, b.pool, "far", advisory.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	l, err = advisory.Acquire(ctx, b.pool, "far", advisory.Options{Namespace: "ns", Fence: true})
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	ran := false
	require.NoError(t, advisory.WithLock(ctx, b.pool, "far", advisory.Options{}, func(context.Context) error { ran = true; return nil }))
	require.True(t, ran)

	tx := b.begin(t)
	require.NoError(t, advisory.LockTx(ctx, tx, "far", advisory.Options{}))
	require.NoError(t, advisory.LockTx(ctx, tx, "far", advisory.Options{Shared: true, LockTimeout: time.Second}))
	ok, err := advisory.TryLockTx(ctx, tx, "far-try", advisory.Options{})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, tx.Commit(ctx))
	require.Empty(t, b.locks(t))
}

// A wait under a far deadline, which sets no lock_timeout, still ends
// when ctx does: cancelling it interrupts the wait on the server and the
// connection goes back to the pool.
func TestFarDeadlineStillBoundsTheWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	held, err := advisory.Acquire(b.ctx, b.pool, "busy", advisory.Options{})
	require.NoError(t, err)
	release(t, held)

	ctx, cancel := context.WithCancel(farCtx(t))
	errc := make(chan error, 1)
	go func() {
		_, err := advisory.Acquire(ctx, b.pool, "busy", advisory.Options{})
		errc <- err
	}()
	b.waiting(t, "busy")
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.NoError(t, held.Release(b.ctx))
	eventually(t, func() bool { return b.pool.Stat().AcquiredConns() == 0 }, "the waiting connection back in the pool")
}

// The Timeout option takes what the server can hold, and refuses the rest
// as bad input: negative, beyond 2147483647 ms, near MaxInt64 (which used
// to overflow into a negative lock_timeout).
func TestTimeoutOptionRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l, err := advisory.Acquire(b.ctx, b.pool, "ranged", advisory.Options{LockTimeout: pgtimeout.Max})
	require.NoError(t, err)
	require.NoError(t, l.Release(b.ctx))
	tx := b.begin(t)
	require.NoError(t, advisory.LockTx(b.ctx, tx, "ranged", advisory.Options{LockTimeout: pgtimeout.Max}))
	require.NoError(t, tx.Rollback(b.ctx))

	for _, d := range []time.Duration{-1, pgtimeout.Max + time.Millisecond, 30 * 24 * time.Hour, math.MaxInt64 - 1, math.MaxInt64, math.MinInt64} {
		_, err := advisory.Acquire(b.ctx, b.pool, "ranged", advisory.Options{LockTimeout: d})
		require.ErrorIs(t, err, advisory.ErrInvalid, "Timeout(%d)", d)
		require.ErrorContains(t, err, "Timeout")
		tx := b.begin(t)
		require.ErrorIs(t, advisory.LockTx(b.ctx, tx, "ranged", advisory.Options{LockTimeout: d}), advisory.ErrInvalid, "Timeout(%d)", d)
		require.NoError(t, tx.Rollback(b.ctx))
		err = advisory.WithLock(b.ctx, b.pool, "ranged", advisory.Options{LockTimeout: d}, func(context.Context) error { return nil })
		require.ErrorIs(t, err, advisory.ErrInvalid)
	}
	require.Empty(t, b.locks(t))
}

// Lead on a free lock with a far deadline leads.
func TestLeadWithFarDeadlineLeads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(farCtx(t))
	defer cancel()
	// A failure bound, not a measurement: a Lead that never leads returns
	// when this cancels its ctx.
	stop := time.AfterFunc(30*time.Second, cancel)
	defer stop.Stop()
	var term int64
	err := advisory.Lead(ctx, b.pool, "far-leader", advisory.Options{}, func(_ context.Context, tm int64) error {
		term = tm
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(1), term, "fn ran as leader")
}

// An error the server answers every campaign with is returned, not
// retried until ctx ends and then dropped.
func TestLeadReturnsAPermanentServerError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A fence table that refuses every token: each campaign's lock
	// statement fails with check_violation.
	_, err := b.pool.Exec(b.ctx, advisory.FenceTableDDL)
	require.NoError(t, err)
	_, err = b.pool.Exec(b.ctx, "ALTER TABLE "+advisory.FenceTable+" ADD CHECK (token > 1000)")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	stop := time.AfterFunc(30*time.Second, cancel) // failure bound: a looping Lead returns nil here
	defer stop.Stop()
	err = advisory.Lead(ctx, b.pool, "refused", advisory.Options{}, func(context.Context, int64) error {
		t.Error("fn ran without a term")
		return nil
	})
	require.Error(t, err)
	require.Equal(t, pgerrcode.CheckViolation, retry.SQLState(err))
	require.NoError(t, ctx.Err(), "Lead returned the error itself, not at cancel")
	require.Empty(t, b.locks(t), "the lock taken by the failed statement was released")
}

func TestCheckIntervalFloor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, d := range []time.Duration{1, time.Microsecond, advisory.MinCheckInterval - 1} {
		_, err := advisory.Acquire(b.ctx, b.pool, "checked", advisory.Options{CheckInterval: d})
		require.ErrorIs(t, err, advisory.ErrInvalid, "CheckInterval(%v)", d)
		require.ErrorContains(t, err, "minimum")
	}
	for _, d := range []time.Duration{advisory.MinCheckInterval, math.MaxInt64} {
		l, err := advisory.Acquire(b.ctx, b.pool, "checked", advisory.Options{CheckInterval: d})
		require.NoError(t, err, "CheckInterval(%v)", d)
		require.NoError(t, l.Release(b.ctx))
	}
}

// A NUL byte is valid UTF-8 but no PostgreSQL text: KeySQL could not
// compute the key, so every entry point refuses such a name.
func TestNamesWithNULAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const bad = "a\x00b"
	_, err := advisory.Key(bad)
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorContains(t, err, "NUL")
	_, _, err = advisory.PairKey(bad, "x")
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, _, err = advisory.PairKey("x", bad)
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Acquire(b.ctx, b.pool, bad, advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.TryAcquire(b.ctx, b.pool, bad, advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Acquire(b.ctx, b.pool, "x", advisory.Options{Namespace: bad})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorIs(t, advisory.WithLock(b.ctx, b.pool, bad, advisory.Options{}, func(context.Context) error { return nil }), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.Lead(b.ctx, b.pool, bad, advisory.Options{}, func(context.Context, int64) error { return nil }), advisory.ErrInvalid)
	tx := b.begin(t)
	require.ErrorIs(t, advisory.LockTx(b.ctx, tx, bad, advisory.Options{}), advisory.ErrInvalid)
	_, err = advisory.TryLockTx(b.ctx, tx, bad, advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.NoError(t, tx.Rollback(b.ctx))
	require.Empty(t, b.locks(t))
}

// Error text quotes at most a short prefix of a name, with its length: a
// megabyte name does not make a megabyte error.
func TestLongNamesAreCutInErrors(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	const limit = 512
	long := strings.Repeat("n", size)
	for _, name := range []string{strings.Repeat("\xff", size), strings.Repeat("a\x00", size/2)} {
		_, err := advisory.Key(name)
		require.ErrorIs(t, err, advisory.ErrInvalid)
		require.Less(t, len(err.Error()), limit, "invalid name")
	}
	for _, err := range []error{
		&advisory.NotAcquiredError{Name: long},
		&advisory.NotAcquiredError{Name: long, Err: context.DeadlineExceeded},
		&advisory.LostError{Name: long, Err: context.Canceled},
	} {
		require.Less(t, len(err.Error()), limit, "%T", err)
		require.Contains(t, err.Error(), "1048576 bytes")
	}
	// The cut falls between characters, not inside one.
	msg := (&advisory.NotAcquiredError{Name: "a" + strings.Repeat("é", size/2)}).Error()
	require.Less(t, len(msg), limit)
	require.NotContains(t, msg, `\x`)
	require.Contains(t, msg, "1048577 bytes")

	b := setup(t)
	l, err := advisory.Acquire(b.ctx, b.pool, long, advisory.Options{})
	require.NoError(t, err)
	release(t, l)
	_, err = advisory.TryAcquire(b.ctx, b.pool, long, advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	require.Less(t, len(err.Error()), limit)
	require.Contains(t, err.Error(), `"nnnn`)
	require.Contains(t, err.Error(), "1048576 bytes")
	var na *advisory.NotAcquiredError
	require.ErrorAs(t, err, &na)
	require.Equal(t, long, na.Name, "the error's field keeps the whole name")
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	_, err = advisory.Acquire(ctx, b.pool, long, advisory.Options{})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, len(err.Error()), limit)
}

// Inspect and CreateFenceTable with no database are an error, not a
// panic, also for a nil pool or connection in the interface.
func TestNilDBIsAnError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var pool *pgxpool.Pool
	var conn *pgx.Conn
	var tx pgx.Tx
	_, err := advisory.Inspect(ctx, nil)
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Inspect(ctx, pool, "x")
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Inspect(ctx, conn)
	require.ErrorIs(t, err, advisory.ErrInvalid)
	_, err = advisory.Inspect(ctx, tx)
	require.ErrorIs(t, err, advisory.ErrInvalid)
	require.ErrorIs(t, advisory.CreateFenceTable(ctx, nil), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.CreateFenceTable(ctx, pool), advisory.ErrInvalid)
	require.ErrorIs(t, advisory.CreateFenceTable(ctx, conn), advisory.ErrInvalid)
}
