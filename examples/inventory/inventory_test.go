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

// TestRun runs a short sale on two hot items and requires every check to
// pass.
func TestRun(t *testing.T) {
	t.Parallel()
	cfg := config{DSN: pgtest.NewDatabase(t), Shoppers: 8, Orders: 40, Items: 2, Stock: 100, Timeout: time.Minute}
	var out bytes.Buffer
	err := run(context.Background(), cfg, &out)
	require.NoError(t, err, "report:\n%s", out.String())
	require.NotContains(t, out.String(), "FAILED")
	t.Logf("report:\n%s", out.String())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{Shoppers: 8, Orders: 150, Items: 3, Stock: 300, Timeout: time.Minute}, cfg)
	for _, args := range [][]string{{"-shoppers", "0"}, {"-orders", "0"}, {"-items", "0"}, {"-stock", "-1"}, {"-timeout", "0s"}, {"extra"}} {
		_, err := parseFlags(args, io.Discard)
		require.Error(t, err, strings.Join(args, " "))
	}
}
