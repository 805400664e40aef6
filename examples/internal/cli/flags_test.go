package cli_test

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/examples/internal/cli"
)

// Parse sets the flags, and fails on a bad flag, on -h (with
// flag.ErrHelp) and on any argument left after the flags.
func TestParse(t *testing.T) {
	t.Parallel()
	newFS := func() (*flag.FlagSet, *int) {
		fs := flag.NewFlagSet("example", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.Int("n", 1, "a number")
	}
	fs, n := newFS()
	require.NoError(t, cli.Parse(fs, []string{"-n", "3"}))
	require.Equal(t, 3, *n)

	fs, _ = newFS()
	require.ErrorIs(t, cli.Parse(fs, []string{"-h"}), flag.ErrHelp)
	fs, _ = newFS()
	require.Error(t, cli.Parse(fs, []string{"-m", "3"}))
	fs, _ = newFS()
	require.EqualError(t, cli.Parse(fs, []string{"-n", "3", "extra", "more"}), `unexpected arguments: ["extra" "more"]`)
}
