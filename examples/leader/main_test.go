package main

import (
	"testing"
	"time"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun runs the example briefly, with goroutine contenders and two
// kills, on a database of its own: it must find no violation.
func TestRun(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	err := run(t.Context(), config{
		contenders: 3,
		duration:   3 * time.Second,
		killEvery:  time.Second,
		tick:       10 * time.Millisecond,
		check:      100 * time.Millisecond,
		worker:     -1,
	})
	if err != nil {
		t.Fatal(err)
	}
}
