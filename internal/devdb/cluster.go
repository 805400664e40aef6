package devdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a throwaway PostgreSQL cluster run from the server binaries on
// this machine. Its data lives in a temporary directory removed by Close.
// Stop and Start (or Restart) bring the same cluster down and up again.
type Cluster struct {
	binDir  string
	dataDir string
	sockDir string
	port    int
	owner   *ServerUser
	extra   []string // "name=value" server settings given to Start

	// A standby's upstream: the primary's port and the replication slot
	// it streams from ("" for none). upstream is 0 for a primary.
	upstream int
	slot     string

	mu   sync.Mutex
	proc *exec.Cmd
	done chan struct{} // closed when proc exits
	logf *os.File
}

// Start creates a cluster with initdb in a temporary directory and starts a
// postgres server on a free loopback port, with trust authentication for
// the "postgres" user and durability turned off (fsync, synchronous_commit,
// full_page_writes): fast, and for throwaway data only. Call Close when
// done. It returns an error wrapping [ErrNoBinaries] when the machine has
// no server binaries.
//
// settings are server settings of the caller's choosing, each "name=value"
// (for example "max_connections=20"). They are given after the defaults,
// so they win over them, and they stay in force across Restart.
func Start(ctx context.Context, settings ...string) (*Cluster, error) {
	return start(ctx, settings, nil)
}

// start is Start with prepare run on the data directory between initdb
// and the server's start.
func start(ctx context.Context, settings []string, prepare func(*Cluster) error) (*Cluster, error) {
	c, err := newCluster(settings)
	if err != nil {
		return nil, err
	}
	root := c.sockDir
	cmd := commandFor(c, "initdb", "-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("devdb: initdb: %w", describeOutput(err, out))
	}
	if prepare != nil {
		if err := prepare(c); err != nil {
			_ = os.RemoveAll(root)
			return nil, err
		}
	}
	if err := c.Start(ctx); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return c, nil
}

// sweepOnce removes, once per process, the directories that killed test
// processes left behind (see sweepStale).
var sweepOnce sync.Once

// newCluster prepares a cluster that is not created yet: its temporary
// directory, owned by the server user, and the binaries to run.
func newCluster(settings []string) (*Cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	own, err := LookupServerUser()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepStale(os.TempDir(), time.Now()) })
	root, err := os.MkdirTemp("", "txkit-pg-")
	if err != nil {
		return nil, err
	}
	if err := own.Chown(root); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return &Cluster{
		binDir:  binDir,
		dataDir: filepath.Join(root, "data"),
		sockDir: root,
		owner:   own,
		extra:   settings,
	}, nil
}

// URL is a connection string for the cluster's "postgres" database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Port is the loopback TCP port the server listens on.
// It stays the same across Restart.
func (c *Cluster) Port() int { return c.port }

// Start starts the server if it is not running, on the port it had before if
// it ran before, and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return nil
	}
	if c.port == 0 {
		port, err := FreePort()
		if err != nil {
			return err
		}
		c.port = port
	}
	logf, err := os.OpenFile(filepath.Join(c.sockDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{
		"-D", c.dataDir,
		"-p", strconv.Itoa(c.port),
		"-k", c.sockDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=300",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	}
	if c.upstream != 0 {
		args = append(args, "-c", "primary_conninfo="+conninfo(c.upstream, c.slot))
		if c.slot != "" {
			args = append(args, "-c", "primary_slot_name="+c.slot)
		}
	}
	for _, s := range c.extra {
		args = append(args, "-c", s)
	}
	cmd := commandFor(c, "postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("devdb: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.proc, c.done, c.logf = cmd, done, logf
	if err := c.waitReady(ctx, done); err != nil {
		c.stopLocked()
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("devdb: postgres did not start: %w", describeOutput(err, log))
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL())
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return errors.New("server exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// waits for it to exit. The data directory is kept, so Start brings the same
// cluster back. Use Close to stop and remove it.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *Cluster) stopLocked() {
	if c.proc == nil {
		return
	}
	_ = c.proc.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.proc.Process.Kill()
		<-c.done
	}
	_ = c.logf.Close()
	c.proc, c.done, c.logf = nil, nil, nil
}

// Restart stops the server and starts it again on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	c.Stop()
	return c.Start(ctx)
}

// Close stops the server and removes its files.
func (c *Cluster) Close() error {
	c.Stop()
	return os.RemoveAll(c.sockDir)
}
