package devdb

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// startReplicated starts a primary with replicas for t, closed in cleanup
// (which runs even if the test panics).
func startReplicated(ctx context.Context, t *testing.T, opts ReplicationOptions) *Replicated {
	t.Helper()
	begin := time.Now()
	r, err := StartReplicated(ctx, opts)
	if err != nil {
		t.Fatalf("the local server binaries must work on this machine: %v", err)
	}
	t.Logf("a primary and %d replica(s) started in %v", len(r.Replicas), time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func connect(ctx context.Context, t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func count(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicaStreamsAndPromotes: a write on the primary is visible on the
// replica once replayed; the replica is in recovery and refuses writes
// with 25006; Promote makes it writable; Close leaves no directory and no
// server process behind.
func TestReplicaStreamsAndPromotes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := startReplicated(ctx, t, ReplicationOptions{Slots: true})
	if len(r.Replicas) != 1 {
		t.Fatalf("%d replicas, want the default 1", len(r.Replicas))
	}
	rep := r.Replicas[0]
	if rep.Port() == r.Primary.Port() {
		t.Fatal("the replica listens on the primary's port")
	}

	primary := connect(ctx, t, r.Primary)
	if _, err := primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := WaitReplayed(ctx, r.Primary, rep); err != nil {
		t.Fatal(err)
	}
	replica := connect(ctx, t, rep)
	if n := count(ctx, t, replica, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("the replica has %d rows after replaying the primary's WAL, want 1", n)
	}
	var slot string
	if err := primary.QueryRow(ctx, "SELECT slot_name FROM pg_replication_slots WHERE active").Scan(&slot); err != nil {
		t.Fatalf("no active replication slot on the primary: %v", err)
	}

	if in, err := rep.InRecovery(ctx); err != nil || !in {
		t.Fatalf("replica: pg_is_in_recovery() = %v, %v; want true", in, err)
	}
	if in, err := r.Primary.InRecovery(ctx); err != nil || in {
		t.Fatalf("primary: pg_is_in_recovery() = %v, %v; want false", in, err)
	}
	_, err := replica.Exec(ctx, "INSERT INTO t VALUES (2)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("a write on the replica returned %v, want SQLSTATE 25006 (read_only_sql_transaction)", err)
	}

	if err := rep.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if in, err := rep.InRecovery(ctx); err != nil || in {
		t.Fatalf("after Promote: pg_is_in_recovery() = %v, %v; want false", in, err)
	}
	promoted := connect(ctx, t, rep)
	if _, err := promoted.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("the promoted replica refuses a write: %v", err)
	}
	if n := count(ctx, t, promoted, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("the promoted replica has %d rows, want 2", n)
	}
	if err := rep.Promote(ctx); err == nil {
		t.Fatal("Promote of a primary succeeded; want an error")
	}

	dirs := nodeDirs(r)
	_ = primary.Close(ctx)
	_ = replica.Close(ctx)
	_ = promoted.Close(ctx)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, dirs)
}

// TestCloseStopsReplicasAndRemovesDirs: Close of a primary with two
// streaming replicas leaves no directory and no server process.
func TestCloseStopsReplicasAndRemovesDirs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := startReplicated(ctx, t, ReplicationOptions{Replicas: 2})
	dirs := nodeDirs(r)
	if len(dirs) != 3 {
		t.Fatalf("%d nodes, want a primary and 2 replicas", len(dirs))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, dirs)
	for _, c := range r.Nodes() {
		if conn, err := pgx.Connect(ctx, c.URL()); err == nil {
			_ = conn.Close(ctx)
			t.Fatalf("a server still accepts connections on port %d after Close", c.Port())
		}
	}
}

// TestApplyDelayHoldsReplay: with recovery_min_apply_delay the replica
// receives the primary's commit but does not replay it, so the row is
// not there; a replica without the delay replays the same WAL.
func TestApplyDelayHoldsReplay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := startReplicated(ctx, t, ReplicationOptions{Replica: []string{"recovery_min_apply_delay=1h"}})
	rep := r.Replicas[0]
	primary := connect(ctx, t, r.Primary)
	if _, err := primary.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	lsn, err := currentLSN(ctx, r.Primary)
	if err != nil {
		t.Fatal(err)
	}
	replica := connect(ctx, t, rep)
	for {
		var received bool
		if err := replica.QueryRow(ctx, "SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn", lsn).Scan(&received); err != nil {
			t.Fatal(err)
		}
		if received {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the replica never received WAL up to %s", lsn)
		case <-time.After(10 * time.Millisecond):
		}
	}
	var replayed bool
	if err := replica.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&replayed); err != nil {
		t.Fatal(err)
	}
	if replayed {
		t.Fatalf("the replica replayed up to %s despite recovery_min_apply_delay=1h", lsn)
	}
	if n := count(ctx, t, replica, "SELECT count(*) FROM pg_class WHERE relname = 't'"); n != 0 {
		t.Fatal("the table created on the primary is visible on the delayed replica")
	}

	// The same WAL, on a replica without the delay, is replayed.
	if err := rep.Restart(ctx); err != nil { // the delay stays: settings survive Restart
		t.Fatal(err)
	}
	if n := count(ctx, t, connect(ctx, t, rep), "SELECT count(*) FROM pg_class WHERE relname = 't'"); n != 0 {
		t.Fatal("after Restart the delayed replica shows the table")
	}
	rep.extra = append(rep.extra, "recovery_min_apply_delay=0")
	if err := rep.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := WaitReplayedLSN(ctx, rep, lsn); err != nil {
		t.Fatal(err)
	}
	if n := count(ctx, t, connect(ctx, t, rep), "SELECT count(*) FROM pg_class WHERE relname = 't'"); n != 1 {
		t.Fatal("without the delay the replica does not show the table")
	}
}

// TestFollowAfterFailover: the primary is stopped, one replica promoted,
// and the other replica and the old primary follow the new primary and
// replay its writes.
func TestFollowAfterFailover(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startReplicated(ctx, t, ReplicationOptions{Replicas: 2, Slots: true})
	a, b := r.Replicas[0], r.Replicas[1]
	primary := connect(ctx, t, r.Primary)
	if _, err := primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_ = primary.Close(ctx)
	r.Primary.Stop() // a clean shutdown sends its last WAL to the replicas
	if err := a.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Follow(ctx, a, "txkit_b"); err != nil {
		t.Fatal(err)
	}
	if err := r.Primary.Follow(ctx, a, ""); err != nil {
		t.Fatal(err)
	}
	newPrimary := connect(ctx, t, a)
	if _, err := newPrimary.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Cluster{b, r.Primary} {
		if err := WaitReplayed(ctx, a, c); err != nil {
			t.Fatal(err)
		}
		if in, err := c.InRecovery(ctx); err != nil || !in {
			t.Fatalf("a follower: pg_is_in_recovery() = %v, %v; want true", in, err)
		}
		if n := count(ctx, t, connect(ctx, t, c), "SELECT count(*) FROM t"); n != 2 {
			t.Fatalf("a follower of the new primary has %d rows, want 2", n)
		}
	}
}

func nodeDirs(r *Replicated) []string {
	var dirs []string
	for _, c := range r.Nodes() {
		dirs = append(dirs, c.sockDir)
	}
	return dirs
}

// assertGone checks that the directories are removed and that no process
// still works in one (every postgres process runs in its data directory).
func assertGone(t *testing.T, dirs []string) {
	t.Helper()
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Close left %s behind (stat: %v)", d, err)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	cwds, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, link := range cwds {
		cwd, err := os.Readlink(link)
		if err != nil {
			continue // the process ended, or is not ours to look at
		}
		for _, d := range dirs {
			if cwd == d || strings.HasPrefix(cwd, d+"/") {
				t.Errorf("a process still runs in %s after Close (%s)", cwd, link)
			}
		}
	}
}

func TestPageStart(t *testing.T) {
	for in, want := range map[string]string{
		"0/3000028":  "0/3000000", // a segment's long header
		"0/3002018":  "0/3002000", // a page's short header
		"0/3000000":  "0/3000000",
		"0/3000148":  "0/3000148",
		"1/FF000029": "1/FF000029", // past a header: a record may end there
		"2/28":       "2/0",
	} {
		got, err := pageStart(in, 8192)
		if err != nil || got != want {
			t.Errorf("pageStart(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := pageStart("nonsense", 8192); err == nil {
		t.Error("pageStart accepted nonsense")
	}
}

// An idle primary that has just switched to a new WAL segment stands past
// the new page's header; its replica, at the boundary, has replayed it all.
func TestWaitReplayedAfterASegmentSwitch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := startReplicated(ctx, t, ReplicationOptions{})
	conn, err := pgx.Connect(ctx, r.Primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	// Separate statements: in one simple query they are one transaction,
	// whose commit record would follow the switch.
	for _, sql := range []string{"CREATE TABLE t ()", "SELECT pg_switch_wal()"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// Without the page rule the wait lasted until the primary's next
	// standby snapshot, about 15 s; replayed, it returns at once. The
	// bound only keeps a broken wait from holding the test.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := WaitReplayed(wctx, r.Primary, r.Replicas[0]); err != nil {
		t.Fatal(err)
	}
}
