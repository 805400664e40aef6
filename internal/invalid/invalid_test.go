package invalid_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/invalid"
)

var errBad = errors.New("pkg: invalid input")

func TestProblemsListsEveryProblemOnce(t *testing.T) {
	t.Parallel()
	var p invalid.Problems
	require.NoError(t, p.Err(errBad), "no problem, no error")
	p.Add("A is %d", -1)
	p.AddErr(nil)
	p.AddErr(invalid.Errorf(errBad, "B is empty"))
	p.AddErr(errors.New("C: no"))
	err := p.Err(errBad)
	require.ErrorIs(t, err, errBad)
	require.Equal(t, "pkg: invalid input: A is -1; B is empty; C: no", err.Error())
}

func TestErrorfMatchesOnlyItsSentinel(t *testing.T) {
	t.Parallel()
	err := invalid.Errorf(errBad, "nil fn")
	require.ErrorIs(t, err, errBad)
	require.NotErrorIs(t, err, errors.New("pkg: invalid input"))
	require.Equal(t, "pkg: invalid input: nil fn", err.Error())
}
