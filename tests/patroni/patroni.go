//go:build linux

package patroni

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/devdb"
	"github.com/txkit/txkit/tests/pgtest"
)

// RequireEnv, set to "1" (as CI does after installing Patroni), makes a
// missing Patroni a test failure rather than a skip.
const RequireEnv = "TXKIT_REQUIRE_PATRONI"

// The DCS timing every cluster runs with: the leader key lives TTL
// seconds, Patroni's loop runs every LoopWait seconds, and a DCS or
// PostgreSQL operation is retried for RetryTimeout seconds. A leader that
// dies without releasing its key is replaced about TTL seconds later.
const (
	TTL          = 10
	LoopWait     = 1
	RetryTimeout = 4
)

// Options says how Start builds a cluster. The zero value is two
// PostgreSQL nodes and a Raft witness.
type Options struct {
	// Nodes is the number of Patroni nodes, each running PostgreSQL; 0
	// means 2. With 2, a third Raft member without PostgreSQL
	// (patroni_raft_controller) keeps a quorum when one node is down.
	Nodes int
	// Parameters are PostgreSQL settings for every node, "name=value".
	Parameters []string
}

// Cluster is a Patroni cluster on 127.0.0.1 with the Raft DCS (no etcd).
type Cluster struct {
	dir     string
	binDir  string
	owner   *pgtest.ServerUser
	nodes   []*Node
	witness *process
}

// Node is one Patroni member and the PostgreSQL server it runs.
type Node struct {
	name    string
	dir     string
	config  string
	pgPort  int
	apiPort int
	owner   *pgtest.ServerUser

	mu   sync.Mutex
	proc *process
}

// process is a running Patroni (or Raft controller) program.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Binary returns the path of the patroni program.
func Binary() (string, error) {
	for _, name := range []string{"patroni", "patroni_raft_controller"} {
		if _, err := exec.LookPath(name); err != nil {
			return "", fmt.Errorf("patroni: %s is not installed (apt-get install patroni python3-pysyncobj, or run .ci/patroni.sh)", name)
		}
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import pysyncobj").Run(); err != nil {
		return "", errors.New("patroni: the Raft DCS needs pysyncobj (apt-get install python3-pysyncobj)")
	}
	return exec.LookPath("patroni")
}

// Start runs a Patroni cluster with opts, waits until it has a leader that
// accepts writes and every other node streams from it, and stops it when t
// ends. It skips t when Patroni or the PostgreSQL server binaries are
// missing, or fails it if RequireEnv is set.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	skip := func(err error) {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v, and %s=1", err, RequireEnv)
		}
		t.Skip(err)
	}
	if _, err := Binary(); err != nil {
		skip(err)
	}
	binDir, err := serverBinDir()
	if err != nil {
		skip(err)
	}
	n := opts.Nodes
	if n == 0 {
		n = 2
	}
	if n < 2 {
		t.Fatalf("patroni: Options.Nodes is %d, want 0 (two) or more", opts.Nodes)
	}
	own, err := pgtest.LookupServerUser()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "txkit-patroni-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{dir: dir, binDir: binDir, owner: own}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("patroni: close: %v", err)
		}
	})
	if err := own.Chown(dir); err != nil {
		t.Fatal(err)
	}

	raftMembers := n
	if n == 2 {
		raftMembers = 3
	}
	raftPorts := make([]int, raftMembers)
	for i := range raftPorts {
		if raftPorts[i], err = devdb.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		node, err := c.writeNode(i, raftPorts, opts.Parameters)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	if n == 2 {
		cfg := filepath.Join(dir, "witness.yml")
		if err := writeOwned(cfg, own, raftSection(dir, "witness", raftPorts, 2)); err != nil {
			t.Fatal(err)
		}
		p, err := startProcess(own, "patroni_raft_controller", cfg, filepath.Join(dir, "witness.log"))
		if err != nil {
			t.Fatal(err)
		}
		c.witness = p
	}
	for _, node := range c.nodes {
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Logs())
	}
	for _, node := range c.nodes {
		if node == leader {
			continue
		}
		if err := node.WaitStreaming(ctx); err != nil {
			t.Fatalf("%v\n%s", err, c.Logs())
		}
	}
	// Every node must hold the same cluster: a server of another test on
	// a node's port would show another system identifier.
	var want int64
	for i, node := range c.nodes {
		var id int64
		if err := query(ctx, node.URL(), "SELECT system_identifier FROM pg_control_system()", &id); err != nil {
			t.Fatalf("patroni: %s: %v", node.name, err)
		}
		if i == 0 {
			want = id
		} else if id != want {
			t.Fatalf("patroni: %s has system identifier %d, %s has %d: not one cluster\n%s", node.name, id, c.nodes[0].name, want, c.Logs())
		}
	}
	return c
}

func (c *Cluster) writeNode(i int, raftPorts []int, params []string) (*Node, error) {
	name := fmt.Sprintf("node%d", i+1)
	dir := filepath.Join(c.dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := c.owner.Chown(dir); err != nil {
		return nil, err
	}
	pgPort, err := devdb.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := devdb.FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	// A scope of its own: clusters of concurrent tests never take each
	// other's keys, whatever their Raft members see.
	fmt.Fprintf(&b, "scope: %s\nname: %s\n", filepath.Base(c.dir), name)
	fmt.Fprintf(&b, "log:\n  level: INFO\n")
	fmt.Fprintf(&b, "restapi:\n  listen: 127.0.0.1:%d\n  connect_address: 127.0.0.1:%d\n", apiPort, apiPort)
	b.WriteString(raftSection(c.dir, name, raftPorts, i))
	fmt.Fprintf(&b, `bootstrap:
  dcs:
    ttl: %d
    loop_wait: %d
    retry_timeout: %d
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 128MB
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - auth: trust
    - no-sync
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
`, TTL, LoopWait, RetryTimeout)
	fmt.Fprintf(&b, `postgresql:
  listen: 127.0.0.1:%d
  connect_address: 127.0.0.1:%d
  data_dir: %s
  bin_dir: %s
  pgpass: %s
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: %s
    fsync: "off"
    synchronous_commit: "off"
    full_page_writes: "on"
    shared_buffers: 16MB
    max_connections: 100
`, pgPort, pgPort, filepath.Join(dir, "data"), c.binDir, filepath.Join(dir, "pgpass"), dir)
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("patroni: parameter %q is not name=value", p)
		}
		fmt.Fprintf(&b, "    %s: %s\n", k, strconv.Quote(v))
	}
	cfg := filepath.Join(dir, "patroni.yml")
	if err := writeOwned(cfg, c.owner, b.String()); err != nil {
		return nil, err
	}
	return &Node{name: name, dir: dir, config: cfg, pgPort: pgPort, apiPort: apiPort, owner: c.owner}, nil
}

// raftSection is the raft: part of a member's configuration: member self
// of the members listening on ports.
func raftSection(dir, name string, ports []int, self int) string {
	var partners []string
	for i, p := range ports {
		if i != self {
			partners = append(partners, fmt.Sprintf("127.0.0.1:%d", p))
		}
	}
	return fmt.Sprintf("raft:\n  data_dir: %s\n  self_addr: 127.0.0.1:%d\n  partner_addrs: [%s]\n",
		filepath.Join(dir, name+"-raft"), ports[self], strings.Join(partners, ", "))
}

// Nodes returns the cluster's members.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// URL is a connection string that reaches whichever node is the primary:
// every node is listed and libpq's target_session_attrs=read-write (which
// pgx honours) picks the writable one.
func (c *Cluster) URL() string {
	var hosts []string
	for _, n := range c.nodes {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", n.pgPort))
	}
	return "postgres://postgres@" + strings.Join(hosts, ",") + "/postgres?sslmode=disable&target_session_attrs=read-write"
}

// Name is the member's name in Patroni ("node1", ...).
func (n *Node) Name() string { return n.name }

// URL is a connection string for the node's PostgreSQL "postgres" database.
func (n *Node) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", n.pgPort)
}

// Running reports whether the node's Patroni is running: started, and
// neither stopped nor exited on its own.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start runs the node's Patroni if it is not running. Patroni starts
// PostgreSQL itself: as a replica of the leader, rewound with pg_rewind if
// the node was a primary that the cluster moved on from.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		return nil
	}
	p, err := startProcess(n.owner, "patroni", n.config, filepath.Join(n.dir, "patroni.log"))
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// Stop stops the node's Patroni the way an operator does (SIGTERM): it
// shuts PostgreSQL down and, if it was the leader, gives up the leader key
// at once, so another node takes over within a loop or two.
func (n *Node) Stop() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	p.stop(syscall.SIGTERM, 60*time.Second)
	n.killPostmaster()
}

// Kill ends the node the way a crash does: Patroni and PostgreSQL get
// SIGKILL. The leader key is not given up; the others wait TTL seconds
// for it to expire before one of them is promoted.
func (n *Node) Kill() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	p.stop(syscall.SIGKILL, 0)
	n.killPostmaster()
}

// killPostmaster kills the node's postmaster if one is still running:
// Patroni starts PostgreSQL in a session of its own, so it outlives a
// killed Patroni.
func (n *Node) killPostmaster() {
	b, err := os.ReadFile(filepath.Join(n.dir, "data", "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return
	}
	if syscall.Kill(pid, syscall.SIGKILL) != nil {
		return
	}
	for range 300 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// IsPrimary reports whether Patroni says the node is the running leader
// (its REST API answers 200 on /primary) and PostgreSQL agrees (it is out
// of recovery).
func (n *Node) IsPrimary(ctx context.Context) bool {
	if !n.Running() || apiStatus(ctx, n.apiPort, "/primary") != http.StatusOK {
		return false
	}
	in, err := inRecovery(ctx, n.URL())
	return err == nil && !in
}

// WaitStreaming waits until the node is a replica that streams from the
// leader (Patroni's /replica answers 200 and a WAL receiver is running).
func (n *Node) WaitStreaming(ctx context.Context) error {
	for {
		if apiStatus(ctx, n.apiPort, "/replica") == http.StatusOK && streaming(ctx, n.URL()) {
			return nil
		}
		if !n.Running() {
			return fmt.Errorf("patroni: %s is not running", n.name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("patroni: %s is not streaming from the leader: %w", n.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitLeader waits until exactly one running node is the primary, and
// returns it.
func (c *Cluster) WaitLeader(ctx context.Context) (*Node, error) {
	for {
		var leaders []*Node
		for _, n := range c.nodes {
			if n.IsPrimary(ctx) {
				leaders = append(leaders, n)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("patroni: no single leader (%d primaries): %w", len(leaders), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Logs returns the tail of every member's Patroni log, and whether its
// Patroni runs, for a failure message.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		log, _ := os.ReadFile(filepath.Join(n.dir, "patroni.log"))
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		fmt.Fprintf(&b, "--- %s (Patroni running: %v) patroni.log (tail)\n%s\n", n.name, n.Running(), log)
	}
	if c.witness != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "witness.log"))
		if len(log) > 2000 {
			log = log[len(log)-2000:]
		}
		fmt.Fprintf(&b, "--- Raft witness log (tail)\n%s\n", log)
	}
	return b.String()
}

// Close stops every member (Patroni first, then any PostgreSQL left) and
// the Raft witness, and removes the cluster's files.
func (c *Cluster) Close() error {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
	c.witness.stop(syscall.SIGTERM, 10*time.Second)
	return os.RemoveAll(c.dir)
}

// startProcess runs program (patroni or patroni_raft_controller) with
// config as the server user, its output going to logPath. If this process
// dies, the program gets SIGTERM, on which Patroni stops PostgreSQL.
func startProcess(own *pgtest.ServerUser, program, config, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(program, config)
	cmd.Dir = filepath.Dir(config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	own.Apply(cmd)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("patroni: start %s: %w", program, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.exited) }()
	return p, nil
}

// stop signals the program and waits up to grace for it to exit, then
// kills it.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// apiClient asks Patroni's REST API without keeping connections open, so
// no transport goroutine outlives a test.
var apiClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func apiStatus(ctx context.Context, port int, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return 0
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func inRecovery(ctx context.Context, url string) (bool, error) {
	var in bool
	err := query(ctx, url, "SELECT pg_is_in_recovery()", &in)
	return in, err
}

func streaming(ctx context.Context, url string) bool {
	var n int
	err := query(ctx, url, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'", &n)
	return err == nil && n == 1
}

func query(ctx context.Context, url, sql string, dest any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return conn.QueryRow(ctx, sql).Scan(dest)
}

// serverBinDir is the directory of the PostgreSQL server binaries Patroni
// runs (initdb, postgres, pg_ctl, pg_basebackup, pg_rewind).
func serverBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(dirs)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append([]string{strings.TrimSpace(string(out))}, dirs...)
	}
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"initdb", "postgres", "pg_ctl", "pg_basebackup", "pg_rewind"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New("patroni: no PostgreSQL server binaries (initdb, postgres, pg_ctl, pg_basebackup, pg_rewind) found")
}

func writeOwned(path string, own *pgtest.ServerUser, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return own.Chown(path)
}
