package txotel_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// lossBound bounds the wait for an event the test caused (a loss seen by
// the watcher, a leak found by the garbage collector): a bound, not a
// timed assertion.
const lossBound = 30 * time.Second

// holderPID is the backend holding the advisory lock called name's key, or
// 0 if none does.
func holderPID(t *testing.T, ctx context.Context, pool *pgxpool.Pool) uint32 {
	t.Helper()
	var pid uint32
	err := pool.QueryRow(ctx, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1").Scan(&pid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(t, err)
	return pid
}

func terminate(t *testing.T, ctx context.Context, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int64(pid)).Scan(&ok))
	require.True(t, ok)
}

// Two leaderships of one Lead call, the first lost when its backend is
// terminated and the second ended by ctx: txkit.advisory.leaderships
// counts 2, txkit.advisory.leader is 1 while fn runs and 0 after, and each
// is an advisory.leadership span with its term, the first lost.
func TestLeadershipSpansAndMetrics(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t)
	tel := newTelemetry(t)
	ctx, cancel := context.WithCancel(b.Ctx)
	defer cancel()
	leader := func() map[string]float64 { return sums(tel.collect(t)["txkit.advisory.leader"]) }
	var terms []int64
	err := advisory.Lead(ctx, b.Pool, "scheduler", advisory.Options{CheckInterval: 20 * time.Millisecond, Observer: tel.obs},
		func(fctx context.Context, term int64) error {
			terms = append(terms, term)
			require.Equal(t, map[string]float64{attrs(): 1}, leader(), "leading now")
			if len(terms) == 1 {
				terminate(t, b.Ctx, b.Pool, holderPID(t, b.Ctx, b.Pool))
			} else {
				cancel()
			}
			select {
			case <-fctx.Done():
			case <-time.After(lossBound):
				t.Fatal("fn's ctx did not end")
			}
			return context.Cause(fctx)
		})
	require.NoError(t, err)
	require.Len(t, terms, 2)

	m := tel.collect(t)
	require.Equal(t, map[string]float64{attrs(): 2}, sums(m["txkit.advisory.leaderships"]))
	require.Equal(t, map[string]float64{attrs(): 0}, sums(m["txkit.advisory.leader"]))
	ls := named(tel.spans, txotel.SpanLeadership)
	require.Len(t, ls, 2)
	for i, s := range ls {
		require.Equal(t, "scheduler", spanAttr(s, txotel.KeyAdvisoryName))
		require.Equal(t, terms[i], s.Attributes()[slicesIndex(s, txotel.KeyAdvisoryTerm)].Value.AsInt64())
	}
	require.Equal(t, "true", spanAttr(ls[0], txotel.KeyAdvisoryLost))
	require.Equal(t, "lock_lost", spanAttr(ls[0], semconv.ErrorTypeKey))
	require.Equal(t, codes.Error, ls[0].Status().Code)
	require.Equal(t, "false", spanAttr(ls[1], txotel.KeyAdvisoryLost))
	require.Equal(t, codes.Unset, ls[1].Status().Code, "ctx ending is Lead's normal stop")
	require.Empty(t, spanAttr(ls[1], semconv.ErrorTypeKey))
}

// The hold span of a lost lock: advisory.hold with advisory.lost=true and
// an error status, counted in txkit.advisory.losses and in hold_time as
// lost.
func TestLostLockHoldSpanAndCounters(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t)
	tel := newTelemetry(t)
	l, err := advisory.Acquire(b.Ctx, b.Pool, "report", advisory.Options{CheckInterval: 20 * time.Millisecond, Observer: tel.obs})
	require.NoError(t, err)
	terminate(t, b.Ctx, b.Pool, l.PID())
	select {
	case <-l.Lost():
	case <-time.After(lossBound):
		t.Fatal("the loss was not seen")
	}
	require.ErrorIs(t, l.Release(b.Ctx), advisory.ErrLockLost)

	require.Equal(t, "advisory.acquire\nadvisory.hold\n", tree(tel.spans.Ended()), "one hold span, from the loss; Release adds none")
	hold := named(tel.spans, txotel.SpanHold)[0]
	acq := named(tel.spans, txotel.SpanAcquire)[0]
	require.Equal(t, "report", spanAttr(hold, txotel.KeyAdvisoryName))
	require.Equal(t, "true", spanAttr(hold, txotel.KeyAdvisoryLost))
	require.Equal(t, codes.Error, hold.Status().Code)
	require.Equal(t, "lock_lost", hold.Status().Description)
	require.False(t, hold.StartTime().Before(acq.StartTime()), "held from the acquisition on")

	m := tel.collect(t)
	require.Equal(t, map[string]float64{attrs(): 1}, sums(m["txkit.advisory.losses"]))
	require.Equal(t, map[string]float64{attrs(txotel.KeyAdvisoryLost.Bool(true)) + "#count": 1},
		countsOnly(sums(m["txkit.advisory.hold_time"])))
}

// leakSignal is txotel's Observer, telling the test when a leak was
// reported.
type leakSignal struct {
	*txotel.Observer
	txLeak   chan struct{}
	lockLeak chan struct{}
}

func (l leakSignal) TxLeak(d txn.TxLeakData) {
	l.Observer.TxLeak(d)
	l.txLeak <- struct{}{}
}

func (l leakSignal) LockLeak(d advisory.LockLeakData) {
	l.Observer.LockLeak(d)
	l.lockLeak <- struct{}{}
}

// A transaction held past its LeakThreshold is counted once in
// txkit.tx.leaks, by name; one that ends in time is not.
func TestTxLeakIsCounted(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)
	obs := leakSignal{Observer: tel.obs, txLeak: make(chan struct{}, 1)}
	err := txn.WithTx(b.Ctx, b.Pool, txn.Options{Name: "slow", LeakThreshold: time.Millisecond, Observer: obs},
		func(ctx context.Context, tx pgx.Tx) error {
			select {
			case <-obs.txLeak:
			case <-time.After(lossBound):
				t.Fatal("the leak was not reported")
			}
			return nil
		})
	require.NoError(t, err)
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, txn.Options{Name: "quick", LeakThreshold: time.Hour, Observer: obs}, failFirst(0, "")))
	require.Equal(t, map[string]float64{attrs(txotel.KeyTxName.String("slow")): 1}, sums(tel.collect(t)["txkit.tx.leaks"]))
}

// acquireAndDrop takes a lock and loses the only reference to it.
//
//go:noinline
func acquireAndDrop(t *testing.T, ctx context.Context, pool *pgxpool.Pool, obs advisory.Observer) {
	l, err := advisory.Acquire(ctx, pool, "forgotten", advisory.Options{Observer: obs})
	require.NoError(t, err)
	require.NotZero(t, l.PID())
}

// A session lock garbage collected without Release is counted once in
// txkit.advisory.leaks; one released is not.
func TestLockLeakIsCounted(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t)
	tel := newTelemetry(t)
	obs := leakSignal{Observer: tel.obs, lockLeak: make(chan struct{}, 1)}
	l, err := advisory.Acquire(b.Ctx, b.Pool, "kept", advisory.Options{Observer: obs})
	require.NoError(t, err)
	require.NoError(t, l.Release(b.Ctx))
	acquireAndDrop(t, b.Ctx, b.Pool, obs)
	deadline := time.After(lossBound)
wait:
	for {
		runtime.GC()
		select {
		case <-obs.lockLeak:
			break wait
		case <-deadline:
			t.Fatal("a lock collected without Release was not reported")
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.Equal(t, map[string]float64{attrs(): 1}, sums(tel.collect(t)["txkit.advisory.leaks"]))
}
