package advisory_test

import (
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/logtest"
)

const (
	leakLine = "advisory: lock garbage collected without Release; it was released now"
	lostLine = "advisory: lock lost"
)

// dropLock takes a lock and loses the only reference to it.
//
//go:noinline
func dropLock(t *testing.T, b *bundle, obs advisory.Observer) {
	l, err := advisory.Acquire(b.ctx, b.pool, "dropped", advisory.Options{Observer: obs})
	require.NoError(t, err)
	require.NotZero(t, l.PID())
}

// The slog observer writes exactly one line per leaked lock and one per
// lost lock, without the connection's password.
func TestSlogObserverOneLinePerLeakAndLoss(t *testing.T) {
	t.Parallel()
	const password = "pw-0f-the-dsn-n3ver-logged"
	b := setup(t, func(c *pgxpool.Config) { c.ConnConfig.Password = password }) // trust auth: accepted, unused
	var buf logtest.Buffer
	leaked := make(chan struct{}, 1)
	obs := advisory.NewSlogObserver(slog.New(logtest.Signal{
		Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Msg: leakLine, Ch: leaked}))

	dropLock(t, b, obs)
	deadline := time.After(lossBound)
wait:
	for {
		runtime.GC()
		select {
		case <-leaked:
			break wait
		case <-deadline:
			t.Fatal("no leak line")
		case <-time.After(10 * time.Millisecond):
		}
	}
	l, err := advisory.Acquire(b.ctx, b.pool, "lost", advisory.Options{Observer: obs, CheckInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	b.terminate(t, l.PID())
	select {
	case <-l.Lost():
	case <-time.After(lossBound):
		t.Fatal("the loss was not seen")
	}
	require.ErrorIs(t, l.Release(b.ctx), advisory.ErrLockLost)

	out := buf.String()
	recs, err := logtest.Records(out)
	require.NoError(t, err)
	counts := map[string]int{}
	for _, rec := range recs {
		counts[rec["msg"].(string)]++
	}
	require.Equal(t, 1, counts[leakLine], out)
	require.Equal(t, 1, counts[lostLine], out)
	require.NotContains(t, out, password)
	require.NotContains(t, out, "postgres://")
}
