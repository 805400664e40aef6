package txn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The limit lets as many first attempts run as its whole part: after a
// halving to 1, one attempt runs at a time until at least queueGrowth
// attempts have ended without a conflict, and a conflict then halves it
// back to one.
func TestQueueLimitIsItsWholePart(t *testing.T) {
	t.Parallel()
	e := &queueEntry{limit: queueStart}
	run := func(conflict bool) {
		require.True(t, e.free(0))
		e.start(0)
		q := queueSlot{entry: e, epoch: e.epoch}
		q.done(conflict)
	}
	run(true)
	require.InDelta(t, queueStart/2, e.limit, 1e-9)
	run(true)
	require.InDelta(t, 1.0, e.limit, 1e-9)

	successes := 0
	for {
		e.start(0)
		two := e.free(0)
		e.stop()
		if two {
			break
		}
		run(false)
		successes++
		require.Less(t, successes, 100, "the limit never lets two attempts run")
	}
	require.GreaterOrEqual(t, successes, int(queueGrowth), "two attempts ran after %d successes at a limit of one", successes)
	require.Less(t, successes, 2*int(queueGrowth))

	run(true)
	require.Less(t, e.limit, 2.0)
	e.start(0)
	require.False(t, e.free(0), "a limit of %v lets one attempt run", e.limit)
	e.stop()
}
