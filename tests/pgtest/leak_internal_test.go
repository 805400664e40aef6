package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLeakedConnectionFailsTheTest runs NewPool under a recording
// testing.TB and checks that a connection still acquired at cleanup is
// reported.
func TestLeakedConnectionFailsTheTest(t *testing.T) {
	old := settleTimeout
	settleTimeout = 100 * time.Millisecond
	defer func() { settleTimeout = old }()

	rec := &recordingTB{TB: t, failed: make(chan struct{})}
	pool := NewPool(rec)
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// Hand the connection back once the leak was reported, so that
		// the pool can close.
		<-rec.failed
		conn.Release()
	}()
	rec.runCleanups()
	if len(rec.errors) == 0 || !strings.Contains(rec.errors[0], "acquired connection") {
		t.Fatalf("a leaked connection must fail the test; got %q", rec.errors)
	}
}

type recordingTB struct {
	testing.TB
	cleanups []func()
	errors   []string
	failed   chan struct{}
}

func (r *recordingTB) Helper()          {}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Errorf(f string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, a...))
	if len(r.errors) == 1 {
		close(r.failed)
	}
}

func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
