package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/wait"
)

func TestSleepWaitsTheWholeDuration(t *testing.T) {
	t.Parallel()
	start := time.Now()
	require.True(t, wait.Sleep(context.Background(), time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), time.Millisecond)
}

func TestSleepGivesWayToADoneContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, wait.Sleep(ctx, time.Hour))
}
