package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun runs the example briefly on hot accounts and requires every
// invariant check to pass.
func TestRun(t *testing.T) {
	t.Parallel()
	cfg := config{
		DSN:       pgtest.NewDatabase(t),
		Workers:   8,
		Accounts:  3,
		Duration:  time.Second,
		Isolation: isolation.Serializable,
	}
	var out bytes.Buffer
	err := run(context.Background(), cfg, &out)
	require.NoError(t, err, "report:\n%s", out.String())
	require.NotContains(t, out.String(), "FAILED", out.String())
	require.Contains(t, out.String(), "total balance unchanged", out.String())
	t.Logf("report:\n%s", out.String())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{Workers: 16, Accounts: 4, Duration: 5 * time.Second, Isolation: isolation.Serializable}, cfg)

	cfg, err = parseFlags([]string{"-workers", "2", "-accounts", "2", "-duration", "1s", "-isolation", "Repeatable_Read"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{Workers: 2, Accounts: 2, Duration: time.Second, Isolation: isolation.RepeatableRead}, cfg)

	for _, args := range [][]string{
		{"-isolation", "snapshot isolation"},
		{"-workers", "0"},
		{"-accounts", "1"},
		{"-duration", "0s"},
		{"extra"},
		{"-retry", "sometimes"},
	} {
		_, err := parseFlags(args, io.Discard)
		require.Error(t, err, strings.Join(args, " "))
	}
}
