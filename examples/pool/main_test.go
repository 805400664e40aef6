package main

import (
	"strings"
	"testing"
	"time"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun runs the example on a database of its own: every check must pass.
func TestRun(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewDatabase(t))
	var out strings.Builder
	err := run(t.Context(), config{
		Instances:      4,
		AcquireTimeout: 100 * time.Millisecond,
		LeakThreshold:  100 * time.Millisecond,
		Deadline:       200 * time.Millisecond,
		AllowInsecure:  true, // TEST_DATABASE_URL may name another host without TLS
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}
