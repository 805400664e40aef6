package advisory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
)

// bundle is what a test needs: a ctx bounded so that a hang fails the test
// instead of the run, and a pool on a database of its own (advisory locks
// are per database, so tests running in parallel do not see each other's).
type bundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

func setup(t *testing.T, configure ...func(*pgxpool.Config)) *bundle {
	t.Helper()
	s := pgtest.Setup(t, pgtest.Configure(configure...))
	return &bundle{ctx: s.Ctx, pool: s.Pool}
}

// release releases l when the test ends, before the pool's cleanup checks
// that no connection is still acquired. Release is safe to call twice, so
// tests may release earlier too.
func release(t *testing.T, l *advisory.Lock) {
	t.Cleanup(func() { _ = l.Release(context.WithoutCancel(t.Context())) })
}

// locks lists the advisory locks in the test's database.
func (b *bundle) locks(t *testing.T, names ...string) []advisory.LockInfo {
	t.Helper()
	ls, err := advisory.Inspect(b.ctx, b.pool, names...)
	require.NoError(t, err)
	return ls
}

// terminate ends a backend from another connection, as an operator or a
// failing network would.
func (b *bundle) terminate(t *testing.T, pid uint32) {
	t.Helper()
	var ok bool
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT pg_terminate_backend($1)", int64(pid)).Scan(&ok))
	require.True(t, ok, "backend %d was not there to terminate", pid)
}

// alive reports whether a backend is connected to the server.
func (b *bundle) alive(t *testing.T, pid uint32) bool {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int64(pid)).Scan(&n))
	return n == 1
}

// eventually polls cond, a question to the server, until it holds or the
// bound passes. It orders a test after something only the server can see
// (a session has started waiting, a backend has exited); the bound is a
// failure, never a measurement.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waiting returns the pid of the first session waiting for the lock
// called name, once there is one.
func (b *bundle) waiting(t *testing.T, name string) uint32 {
	t.Helper()
	var pid uint32
	eventually(t, func() bool {
		for _, l := range b.locks(t, name) {
			if l.Name == name && !l.Granted {
				pid = l.PID
				return true
			}
		}
		return false
	}, "a session waiting for "+name)
	return pid
}

// holder returns the pid of a session holding the lock called name, once
// there is one.
func (b *bundle) holder(t *testing.T, name string) uint32 {
	t.Helper()
	var pid uint32
	eventually(t, func() bool {
		for _, l := range b.locks(t, name) {
			if l.Name == name && l.Granted {
				pid = l.PID
				return true
			}
		}
		return false
	}, "a session holding "+name)
	return pid
}

// recorder is an Observer that keeps every event.
type recorder struct {
	advisory.NopObserver
	mu       sync.Mutex
	acquired []advisory.AcquireEndData
	released []advisory.LockReleasedData
	lost     []advisory.LockLostData
	leaks    chan advisory.LockLeakData
}

func newRecorder() *recorder { return &recorder{leaks: make(chan advisory.LockLeakData, 8)} }

func (r *recorder) AcquireEnd(_ context.Context, d advisory.AcquireEndData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acquired = append(r.acquired, d)
}

func (r *recorder) LockReleased(_ context.Context, d advisory.LockReleasedData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = append(r.released, d)
}

func (r *recorder) LockLost(d advisory.LockLostData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost = append(r.lost, d)
}

func (r *recorder) LockLeak(d advisory.LockLeakData) { r.leaks <- d }

func (r *recorder) snapshot() (acq []advisory.AcquireEndData, rel []advisory.LockReleasedData, lost []advisory.LockLostData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(acq, r.acquired...), append(rel, r.released...), append(lost, r.lost...)
}
