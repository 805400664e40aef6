package advisory_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
)

// TestHeldConnectionsAreLabelledNotLeaks: a session lock and a leader's
// campaign hold a pool connection on purpose, for longer than any leak
// threshold. txkit's pool names them by what holds them and never reports
// them as leaks.
func TestHeldConnectionsAreLabelledNotLeaks(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	const threshold = 20 * time.Millisecond
	p, err := pool.Open(t.Context(), pgtest.NewDatabase(t), pool.Options{
		LeakThreshold: threshold,
		Logger:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 20*time.Second)
		defer cancel()
		assert.NoError(t, p.Close(ctx))
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	labels := func() []string {
		var out []string
		for _, h := range p.Held() {
			out = append(out, h.Label)
		}
		return out
	}

	l, err := advisory.Acquire(ctx, p.Pgx(), "jobs", advisory.Options{})
	require.NoError(t, err)
	time.Sleep(10 * threshold) // well past the threshold: a leak would be reported now
	assert.Equal(t, []string{`advisory lock "jobs"`}, labels())
	require.NoError(t, l.Release(ctx))

	err = advisory.Lead(ctx, p.Pgx(), "scheduler", advisory.Options{}, func(ctx context.Context, _ int64) error {
		time.Sleep(10 * threshold)
		// fn's own work is not marked: only the campaign's connection is.
		c, err := p.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		assert.ElementsMatch(t, []string{`advisory leader "scheduler"`, ""}, labels())
		return nil
	})
	require.NoError(t, err)
	assert.NotContains(t, logs.String(), "leak threshold", "a connection held on purpose was reported as a leak")
	assert.Empty(t, p.Held())
}
