package txotel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txotel"
)

func TestAdvisoryWaitAndHoldSpansAndMetrics(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t)
	tel := newTelemetry(t)
	opts := advisory.Options{Observer: tel.obs}

	l, err := advisory.Acquire(b.Ctx, b.Pool, "nightly-report", opts)
	require.NoError(t, err)
	_, err = advisory.TryAcquire(b.Ctx, b.Pool, "nightly-report", opts)
	require.ErrorIs(t, err, advisory.ErrNotAcquired)
	require.NoError(t, l.Release(b.Ctx))

	require.Equal(t, []string{txotel.SpanAcquire, txotel.SpanAcquire, txotel.SpanHold}, ended(tel.spans))
	got, missed, hold := tel.spans.Ended()[0], tel.spans.Ended()[1], tel.spans.Ended()[2]
	require.Equal(t, "nightly-report", spanAttr(got, txotel.KeyAdvisoryName))
	require.Equal(t, "true", spanAttr(got, txotel.KeyAdvisoryAcquired))
	require.Equal(t, "false", spanAttr(got, txotel.KeyAdvisoryTry))
	require.Equal(t, "false", spanAttr(missed, txotel.KeyAdvisoryAcquired))
	require.Equal(t, "true", spanAttr(missed, txotel.KeyAdvisoryTry))
	require.Equal(t, "not_acquired", spanAttr(missed, "error.type"))
	require.Equal(t, "false", spanAttr(hold, txotel.KeyAdvisoryLost))
	require.False(t, hold.StartTime().Before(got.StartTime()), "the hold starts once the wait has")
	require.False(t, hold.EndTime().Before(missed.EndTime()), "the hold ends at Release, after the other call")

	m := tel.collect(t)
	session := txotel.KeyAdvisoryKind.String("session")
	notShared := txotel.KeyAdvisoryShared.Bool(false)
	require.Equal(t, map[string]float64{
		attrs(session, notShared, txotel.KeyAdvisoryAcquired.Bool(true)) + "#count":  1,
		attrs(session, notShared, txotel.KeyAdvisoryAcquired.Bool(false)) + "#count": 1,
	}, countsOnly(sums(m["txkit.advisory.wait_time"])))
	require.Equal(t, map[string]float64{attrs(txotel.KeyAdvisoryLost.Bool(false)) + "#count": 1},
		countsOnly(sums(m["txkit.advisory.hold_time"])), "no lock name on metrics unless LockNames")
	require.Equal(t, map[string]float64{attrs(session): 1}, sums(m["txkit.advisory.not_acquired"]))
}

func TestLockNamesOnMetricsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t)
	tel := newTelemetry(t, func(o *txotel.Options) { o.LockNames = true })
	l, err := advisory.Acquire(b.Ctx, b.Pool, "singleton", advisory.Options{Observer: tel.obs})
	require.NoError(t, err)
	require.NoError(t, l.Release(b.Ctx))
	m := tel.collect(t)
	require.Equal(t, map[string]float64{attrs(txotel.KeyAdvisoryLost.Bool(false), txotel.KeyAdvisoryName.String("singleton")) + "#count": 1},
		countsOnly(sums(m["txkit.advisory.hold_time"])))
}

// countsOnly keeps the histogram counts of sums' result.
func countsOnly(s map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if len(k) > 6 && k[len(k)-6:] == "#count" {
			out[k] = v
		}
	}
	return out
}
