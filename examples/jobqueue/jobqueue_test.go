package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun drains a small queue and requires every check to pass.
func TestRun(t *testing.T) {
	t.Parallel()
	cfg := config{DSN: pgtest.NewDatabase(t), Jobs: 500, Workers: 4, Batch: 7, FailEvery: 50, Timeout: time.Minute}
	var out bytes.Buffer
	err := run(context.Background(), cfg, &out)
	require.NoError(t, err, "report:\n%s", out.String())
	require.NotContains(t, out.String(), "FAILED")
	require.Contains(t, out.String(), "10 batches failed on purpose")
	t.Logf("report:\n%s", out.String())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{Jobs: 5000, Workers: 8, Batch: 20, FailEvery: 97, Timeout: time.Minute}, cfg)
	for _, args := range [][]string{{"-jobs", "0"}, {"-workers", "0"}, {"-batch", "0"}, {"-fail-every", "-1"}, {"-timeout", "0s"}, {"extra"}} {
		_, err := parseFlags(args, io.Discard)
		require.Error(t, err, strings.Join(args, " "))
	}
}
