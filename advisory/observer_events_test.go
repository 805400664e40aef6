package advisory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
)

// lostOnly implements one event interface and nothing else.
type lostOnly struct {
	mu   sync.Mutex
	lost []advisory.LockLostData
}

func (o *lostOnly) LockLost(d advisory.LockLostData) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lost = append(o.lost, d)
}

// An observer gets the events whose interface it implements, and the lock
// calls run as without one for the rest.
func TestObserverImplementingOneEventInterface(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &lostOnly{}
	opts := advisory.Options{CheckInterval: 50 * time.Millisecond, Observer: obs}

	l, err := advisory.Acquire(b.ctx, b.pool, "quiet", opts)
	require.NoError(t, err)
	require.NoError(t, l.Release(b.ctx))

	l, err = advisory.Acquire(b.ctx, b.pool, "watched", opts)
	require.NoError(t, err)
	release(t, l)
	b.terminate(t, l.PID())
	select {
	case <-l.Lost():
	case <-time.After(lossBound):
		t.Fatal("Lost was not closed after the holding backend was terminated")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	require.Len(t, obs.lost, 1, "reported before Lost is closed")
	require.Equal(t, "watched", obs.lost[0].Name)
	require.ErrorIs(t, obs.lost[0].Err, advisory.ErrLockLost)
}

// A LeaderStartObserver alone sees the term Lead won.
type leaderStartOnly struct{ terms chan int64 }

func (o leaderStartOnly) LeaderStart(_ context.Context, d advisory.LeaderStartData) {
	o.terms <- d.Term
}

func TestLeaderStartObserverAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := leaderStartOnly{terms: make(chan int64, 1)}
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	err := advisory.Lead(ctx, b.pool, "leader", advisory.Options{Fence: true, Observer: obs},
		func(ctx context.Context, term int64) error {
			cancel()
			<-ctx.Done()
			return nil
		})
	require.NoError(t, err)
	require.Positive(t, <-obs.terms)
}

// The slog observer implements every event interface, so a new event
// interface must come with a method on it.
func TestSlogObserverImplementsEveryEvent(t *testing.T) {
	t.Parallel()
	obs := advisory.NewSlogObserver(nil)
	require.Implements(t, (*advisory.AcquireStartObserver)(nil), obs)
	require.Implements(t, (*advisory.AcquireEndObserver)(nil), obs)
	require.Implements(t, (*advisory.LockReleasedObserver)(nil), obs)
	require.Implements(t, (*advisory.LockLostObserver)(nil), obs)
	require.Implements(t, (*advisory.LockLeakObserver)(nil), obs)
	require.Implements(t, (*advisory.LeaderStartObserver)(nil), obs)
	require.Implements(t, (*advisory.LeaderEndObserver)(nil), obs)
}

// wrongSignature has a LockLost method that is not the event's: it
// observes nothing.
type wrongSignature struct{}

func (wrongSignature) LockLost(context.Context, advisory.LockLostData) {}

// TestObserverThatObservesNothingIsRefused: Observer is any, so a value
// implementing no event interface would compile and never be called. It is
// refused before anything is sent.
func TestObserverThatObservesNothingIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, obs := range []advisory.Observer{struct{}{}, wrongSignature{}} {
		_, err := advisory.Acquire(b.ctx, b.pool, "x", advisory.Options{Observer: obs})
		require.ErrorIs(t, err, advisory.ErrInvalid)
		require.ErrorContains(t, err, "implements none of the event interfaces")
	}
	l, err := advisory.Acquire(b.ctx, b.pool, "x", advisory.Options{Observer: &lostOnly{}})
	require.NoError(t, err)
	require.NoError(t, l.Release(b.ctx))
}
