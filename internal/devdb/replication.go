package devdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplicationOptions says how [StartReplicated] builds a primary and its
// streaming replicas. The zero value is one replica without a slot and no
// settings beyond the defaults.
type ReplicationOptions struct {
	// Replicas is the number of streaming replicas; 0 means 1.
	Replicas int
	// Primary holds server settings for the primary, each "name=value"
	// (for example "wal_sender_timeout=5s"), given after the defaults.
	Primary []string
	// Replica holds server settings for every replica, each "name=value"
	// (for example "recovery_min_apply_delay=500ms" or
	// "hot_standby_feedback=on"), given after the defaults.
	Replica []string
	// Slots gives each replica a physical replication slot on the
	// primary, so the primary keeps the WAL a stopped replica has not
	// received yet. Without a slot the primary keeps wal_keep_size
	// (128MB) of WAL.
	Slots bool
}

// Replicated is a throwaway primary with streaming replicas: hot standbys
// made with pg_basebackup -R, each in a directory of its own and on a
// port of its own. Close stops and removes all of them.
type Replicated struct {
	// Primary is the node started as the primary. After a replica's
	// Promote it is still this node; the fields name nodes as started.
	Primary *Cluster
	// Replicas are the nodes started as hot standbys of Primary.
	Replicas []*Cluster
}

// primaryDefaults are the settings a primary needs to stream WAL to
// standbys; the PostgreSQL 15 defaults already give most of them, but a
// site's postgresql.conf need not.
var primaryDefaults = []string{
	"wal_level=replica",
	"max_wal_senders=10",
	"max_replication_slots=10",
	"wal_keep_size=128MB",
	"hot_standby=on",
	"shared_buffers=16MB",
}

// replicaDefaults make a standby that answers read-only queries and
// reports its progress to the primary promptly.
var replicaDefaults = []string{
	"hot_standby=on",
	"shared_buffers=16MB",
	"wal_receiver_status_interval=1s",
}

// StartReplicated starts a primary (as [Start] does, plus the settings
// replication needs and a trust entry for replication connections from
// 127.0.0.1) and opts.Replicas streaming replicas, each taken with
// pg_basebackup -R and started as a hot standby. It returns when every
// replica accepts read-only connections. Call Close when done; on error
// nothing is left running. It returns an error wrapping [ErrNoBinaries]
// when the machine has no server binaries, or lacks pg_basebackup or
// pg_ctl beside them.
func StartReplicated(ctx context.Context, opts ReplicationOptions) (*Replicated, error) {
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("devdb: ReplicationOptions.Replicas is %d, want 0 (one) or more", opts.Replicas)
	}
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"pg_basebackup", "pg_ctl"} {
		if !isExecutable(filepath.Join(binDir, name)) {
			return nil, fmt.Errorf("%w: %s is missing from %s", ErrNoBinaries, name, binDir)
		}
	}
	n := opts.Replicas
	if n == 0 {
		n = 1
	}
	primary, err := start(ctx, append(append([]string{}, primaryDefaults...), opts.Primary...), allowReplication)
	if err != nil {
		return nil, err
	}
	r := &Replicated{Primary: primary}
	for i := range n {
		slot := ""
		if opts.Slots {
			slot = "txkit_replica_" + strconv.Itoa(i+1)
		}
		rep, err := startReplica(ctx, primary, slot, opts.Replica)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("devdb: replica %d: %w", i+1, err)
		}
		r.Replicas = append(r.Replicas, rep)
	}
	return r, nil
}

// allowReplication puts a trust entry for replication connections from
// 127.0.0.1 first in the primary's pg_hba.conf.
func allowReplication(c *Cluster) error {
	path := filepath.Join(c.dataDir, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("devdb: read pg_hba.conf: %w", err)
	}
	hba := append([]byte("host replication all 127.0.0.1/32 trust\n"), old...)
	if err := os.WriteFile(path, hba, 0o600); err != nil {
		return fmt.Errorf("devdb: write pg_hba.conf: %w", err)
	}
	return c.owner.Chown(path)
}

func startReplica(ctx context.Context, primary *Cluster, slot string, settings []string) (*Cluster, error) {
	c, err := newCluster(append(append([]string{}, replicaDefaults...), settings...))
	if err != nil {
		return nil, err
	}
	c.upstream, c.slot = primary.port, slot
	args := []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", c.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
	}
	if slot != "" {
		args = append(args, "-C", "-S", slot)
	}
	cmd := commandFor(c, "pg_basebackup", args...)
	if err := runCommand(ctx, cmd); err != nil {
		_ = os.RemoveAll(c.sockDir)
		return nil, fmt.Errorf("devdb: pg_basebackup: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		_ = os.RemoveAll(c.sockDir)
		return nil, err
	}
	return c, nil
}

// runCommand runs cmd, killing it if ctx ends first, and puts its output
// in the error.
func runCommand(ctx context.Context, cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		return describeOutput(err, out.Bytes())
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return describeOutput(errors.Join(ctx.Err(), <-done), out.Bytes())
	}
}

// Nodes returns the primary and then the replicas, as started.
func (r *Replicated) Nodes() []*Cluster {
	return append([]*Cluster{r.Primary}, r.Replicas...)
}

// Close stops every node and removes their files. It tries every node
// and returns their errors joined.
func (r *Replicated) Close() error {
	var errs []error
	for _, c := range r.Replicas {
		errs = append(errs, c.Close())
	}
	if r.Primary != nil {
		errs = append(errs, r.Primary.Close())
	}
	return errors.Join(errs...)
}

// InRecovery reports whether the server is a standby (pg_is_in_recovery).
func (c *Cluster) InRecovery(ctx context.Context) (bool, error) {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var in bool
	err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&in)
	return in, err
}

// Promote turns a standby into a primary with pg_ctl promote and waits
// until it is out of recovery and accepts writes. Promoting a node that
// is already a primary is an error.
func (c *Cluster) Promote(ctx context.Context) error {
	c.mu.Lock()
	running := c.proc != nil
	c.mu.Unlock()
	if !running {
		return errors.New("devdb: promote: the server is not running")
	}
	cmd := commandFor(c, "pg_ctl", "promote", "-D", c.dataDir, "-w", "-t", "60")
	if err := runCommand(ctx, cmd); err != nil {
		return fmt.Errorf("devdb: pg_ctl promote: %w", err)
	}
	for {
		in, err := c.InRecovery(ctx)
		if err == nil && !in {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devdb: promote: still in recovery: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.mu.Lock()
	c.upstream, c.slot = 0, ""
	c.mu.Unlock()
	return nil
}

// Follow makes the node a standby of primary: it stops the node, points
// primary_conninfo at primary and starts it again as a hot standby. It
// serves to re-point a replica at a promoted sibling, or to bring back a
// former primary that was stopped cleanly before the promotion (a primary
// whose WAL went further than the new one's would need pg_rewind, which
// Follow does not run). With a slot (slot != ""), the slot is created on
// primary if it is missing.
func (c *Cluster) Follow(ctx context.Context, primary *Cluster, slot string) error {
	if slot != "" {
		if err := ensureSlot(ctx, primary, slot); err != nil {
			return err
		}
	}
	c.Stop()
	signal := filepath.Join(c.dataDir, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return fmt.Errorf("devdb: follow: %w", err)
	}
	if err := c.owner.Chown(signal); err != nil {
		return err
	}
	c.mu.Lock()
	c.upstream, c.slot = primary.port, slot
	c.mu.Unlock()
	return c.Start(ctx)
}

func ensureSlot(ctx context.Context, c *Cluster, slot string) error {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot)
	if err != nil {
		return fmt.Errorf("devdb: create replication slot: %w", err)
	}
	return nil
}

// WaitReplayed waits until replica has replayed all the WAL primary had
// inserted when WaitReplayed was called: every transaction committed on
// primary before the call is then visible on replica. It asks for the
// insert position, not the write position, so asynchronous commits
// (synchronous_commit=off) are waited for too. It returns ctx's error if
// ctx ends first; a replica with recovery_min_apply_delay waits that long.
func WaitReplayed(ctx context.Context, primary, replica *Cluster) error {
	lsn, err := currentLSN(ctx, primary)
	if err != nil {
		return err
	}
	return WaitReplayedLSN(ctx, replica, lsn)
}

// WaitReplayedLSN waits until replica has replayed WAL up to lsn (a
// pg_lsn in text form, like "0/3000148"). A position just past a WAL page
// header counts as the page's start: after a switch to a new segment an
// idle primary's insert position is past the new page's header, while a
// replica that has replayed everything stays at the boundary until the
// primary writes again, which took about 15 s (the next standby snapshot).
func WaitReplayedLSN(ctx context.Context, replica *Cluster, lsn string) error {
	conn, err := pgx.Connect(ctx, replica.URL())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var block uint64
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_block_size')::bigint").Scan(&block); err != nil {
		return fmt.Errorf("devdb: wal_block_size: %w", err)
	}
	if lsn, err = pageStart(lsn, block); err != nil {
		return err
	}
	for {
		var done bool
		err := conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&done)
		if err != nil {
			return fmt.Errorf("devdb: replay position: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devdb: replica did not replay up to %s: %w", lsn, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// walLongPageHeader is the size of the header that starts a WAL segment
// (XLogLongPageHeaderData); other pages start with a shorter one. No
// record begins inside a header.
const walLongPageHeader = 40

// pageStart returns lsn, or the start of its page when lsn lies within
// the page's header (see WaitReplayedLSN).
func pageStart(lsn string, block uint64) (string, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(lsn, "%X/%X", &hi, &lo); err != nil {
		return "", fmt.Errorf("devdb: %q is not a WAL position: %w", lsn, err)
	}
	p := uint64(hi)<<32 | uint64(lo)
	if block > 0 {
		if off := p % block; off != 0 && off <= walLongPageHeader {
			p -= off
		}
	}
	return fmt.Sprintf("%X/%X", p>>32, uint32(p)), nil
}

// currentLSN is the primary's WAL insert position.
func currentLSN(ctx context.Context, primary *Cluster) (string, error) {
	conn, err := pgx.Connect(ctx, primary.URL())
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return "", fmt.Errorf("devdb: primary WAL position: %w", err)
	}
	return lsn, nil
}

// conninfo is a replica's primary_conninfo for a primary on port.
func conninfo(port int, slot string) string {
	s := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", port)
	if slot != "" {
		s += " application_name=" + slot
	}
	return s
}
