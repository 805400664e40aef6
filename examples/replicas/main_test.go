package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun runs the example briefly, with the promotion, and requires every
// check to pass.
func TestRun(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), config{Workers: 4, Duration: 3 * time.Second, ApplyDelay: 20 * time.Millisecond, Promote: true}, &out)
	require.NoError(t, err, "report:\n%s", out.String())
	require.NotContains(t, out.String(), "FAILED")
	require.Contains(t, out.String(), "no lost commit")
	t.Logf("report:\n%s", out.String())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{Workers: 8, Duration: 6 * time.Second, ApplyDelay: 20 * time.Millisecond, Promote: true}, cfg)
	for _, args := range [][]string{{"-workers", "0"}, {"-duration", "0s"}, {"-apply-delay", "1500us"}, {"extra"}} {
		_, err := parseFlags(args, io.Discard)
		require.Error(t, err, args)
	}
}
