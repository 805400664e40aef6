package isolation_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
)

// The database tests in phenomena_test.go show the table is true of the
// server; these check that the table is consistent with itself and with
// the rest of the package.

func TestPhenomenaNames(t *testing.T) {
	t.Parallel()
	all := isolation.Phenomena()
	require.Len(t, all, 7)
	seen := map[string]bool{}
	for _, p := range all {
		name := p.String()
		require.NotContains(t, name, "Phenomenon(", "%d has no name", int(p))
		require.False(t, seen[name], "two phenomena named %q", name)
		seen[name] = true
	}
	require.Equal(t, "Phenomenon(0)", isolation.Phenomenon(0).String())

	all[0] = isolation.WriteSkew
	require.Equal(t, isolation.DirtyRead, isolation.Phenomena()[0], "Phenomena must return a fresh slice")
}

func TestPreventsDefaultIsReadCommitted(t *testing.T) {
	t.Parallel()
	for _, p := range isolation.Phenomena() {
		require.Equal(t, isolation.ReadCommitted.Prevents(p), isolation.Default.Prevents(p), "%v", p)
	}
}

func TestPreventsOutOfRange(t *testing.T) {
	t.Parallel()
	for _, p := range isolation.Phenomena() {
		require.False(t, isolation.Level(9).Prevents(p), "Level(9) is not a level: %v", p)
	}
	for _, l := range allLevels {
		require.False(t, l.Prevents(0), "%v", l)
		require.False(t, l.Prevents(99), "%v", l)
	}
}

// TestStrongerAgreesWithPrevents: a stronger level is one that prevents
// strictly more, so the two methods must never disagree.
func TestStrongerAgreesWithPrevents(t *testing.T) {
	t.Parallel()
	levels := append([]isolation.Level{-1, 9}, allLevels...)
	for _, a := range levels {
		for _, b := range levels {
			require.Equal(t, strictSuperset(a, b), a.Stronger(b), "%v.Stronger(%v)", a, b)
		}
	}
}

// strictSuperset reports whether a prevents everything b prevents, and more.
func strictSuperset(a, b isolation.Level) bool {
	more := false
	for _, p := range isolation.Phenomena() {
		if b.Prevents(p) && !a.Prevents(p) {
			return false
		}
		if a.Prevents(p) && !b.Prevents(p) {
			more = true
		}
	}
	return more
}
