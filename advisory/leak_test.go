package advisory_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
)

// acquireAndDrop takes a lock and loses the only reference to it.
//
//go:noinline
func acquireAndDrop(t *testing.T, b *bundle, rec *recorder) {
	l, err := advisory.Acquire(b.ctx, b.pool, "forgotten", advisory.Options{Observer: rec})
	require.NoError(t, err)
	require.NotZero(t, l.PID())
}

func TestLeakedLockIsReportedAndReleased(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := newRecorder()
	acquireAndDrop(t, b, rec)

	var leak advisory.LockLeakData
	deadline := time.After(lossBound)
wait:
	for {
		runtime.GC()
		select {
		case leak = <-rec.leaks:
			break wait
		case <-deadline:
			t.Fatal("a Lock collected without Release was not reported")
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.Equal(t, "forgotten", leak.Name)
	require.Contains(t, string(leak.Stack), "acquireAndDrop", "the report says where the lock was taken")

	// The leak was released before it was reported: the lock is free and
	// its connection is back in the pool.
	require.Empty(t, b.locks(t))
	require.Equal(t, int32(0), b.pool.Stat().AcquiredConns())
	_, rel, _ := rec.snapshot()
	require.Len(t, rel, 1)
	require.False(t, rel[0].Discarded)
}

// acquireEndOnly observes acquisitions but not leaks.
type acquireEndOnly struct{}

func (acquireEndOnly) AcquireEnd(context.Context, advisory.AcquireEndData) {}

// The acquiring stack costs a capture per lock, so it is taken only when
// a LockLeakObserver will report it.
func TestStackCapturedOnlyForLeakObservers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, c := range map[string]struct {
		obs  advisory.Observer
		want bool
	}{
		"no observer":         {nil, false},
		"not a leak observer": {acquireEndOnly{}, false},
		"leak observer":       {newRecorder(), true},
	} {
		l, err := advisory.Acquire(b.ctx, b.pool, "stack "+name, advisory.Options{Observer: c.obs})
		require.NoError(t, err, name)
		require.Equal(t, c.want, advisory.CapturedStack(l), name)
		release(t, l)
	}
}
