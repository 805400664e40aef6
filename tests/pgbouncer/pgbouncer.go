package pgbouncer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/tests/pgtest"
)

// Mode is PgBouncer's pool_mode.
type Mode string

// Pool modes.
const (
	// Session gives each client one server connection until it
	// disconnects: session state, session locks included, is safe.
	Session Mode = "session"
	// Transaction gives a client a server connection for one transaction
	// at a time: session state set outside a transaction stays behind on
	// a server connection that other clients get next.
	Transaction Mode = "transaction"
)

// RequireEnv makes a missing pgbouncer binary a test failure rather than a
// skip.
const RequireEnv = "TXKIT_REQUIRE_PGBOUNCER"

// Binary returns the path of the pgbouncer executable.
func Binary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	// Debian installs it in /usr/sbin, which is not on every PATH.
	const sbin = "/usr/sbin/pgbouncer"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", errors.New("pgbouncer: the pgbouncer binary is not installed (run .ci/pgbouncer.sh)")
}

// Start runs PgBouncer in mode in front of the database dsn names, on a
// free loopback port, and returns a connection string that goes through
// it. PgBouncer is stopped when t ends. It skips t if PgBouncer is not
// installed, or fails it if RequireEnv is set.
func Start(t testing.TB, dsn string, mode Mode) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v, and %s=1", err, RequireEnv)
		}
		t.Skip(err)
	}
	target, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgbouncer: parse the database connection string: %v", err)
	}
	dir, own, err := workDir(t)
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ini, err := writeConfig(dir, own, port, target, mode)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, ini)
	logf, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	own.Apply(cmd)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("pgbouncer: start: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	t.Cleanup(func() { stop(t, cmd, exited) })

	if err := waitListening(port, exited); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("pgbouncer did not start: %v\n%s%s", err, log, out)
	}
	u := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", target.User, port, target.Database)
	if target.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", target.User, target.Password, port, target.Database)
	}
	return u
}

// Pool opens a pool through PgBouncer, set up as transaction pooling
// needs: statements are not prepared on one server connection and run on
// another (QueryExecModeExec sends each in one round trip, unnamed). The
// test fails at cleanup if a connection is still acquired.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n := pool.Stat().AcquiredConns(); n != 0 {
			t.Errorf("pgbouncer: pool still has %d acquired connection(s) at the end of the test", n)
		}
		pool.Close()
	})
	return pool
}

func writeConfig(dir string, own *pgtest.ServerUser, port int, target *pgconn.Config, mode Mode) (string, error) {
	users := filepath.Join(dir, "userlist.txt")
	// With auth_type = trust PgBouncer checks no client password, but a
	// user must be listed; the password listed is the one it logs in to
	// the server with.
	if err := writeOwned(users, own, fmt.Sprintf("%s %s\n", quote(target.User), quote(target.Password))); err != nil {
		return "", err
	}
	host := "host=" + target.Host
	ini := filepath.Join(dir, "pgbouncer.ini")
	conf := fmt.Sprintf(`[databases]
* = %s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
max_client_conn = 200
default_pool_size = 20
logfile = %s
pidfile = %s
ignore_startup_parameters = extra_float_digits
`, host, target.Port, port, users, mode, filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	return ini, writeOwned(ini, own, conf)
}

// quote writes a value as PgBouncer's auth_file wants it: in double quotes,
// with double quotes doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// workDir is a temporary directory PgBouncer can write its log and pid
// file in. PgBouncer refuses to run as root, so a root test process runs it
// as the "postgres" user, who must own the directory.
func workDir(t testing.TB) (string, *pgtest.ServerUser, error) {
	own, err := pgtest.LookupServerUser()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "txkit-pgbouncer-")
	if err != nil {
		return "", nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := own.Chown(dir); err != nil {
		return "", nil, err
	}
	return dir, own, nil
}

func writeOwned(path string, own *pgtest.ServerUser, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return own.Chown(path)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(port int, exited <-chan struct{}) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-exited:
			return errors.New("pgbouncer exited")
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends PgBouncer at once (SIGTERM: no waiting for clients) and waits
// for it to exit.
func stop(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("pgbouncer: did not stop on SIGTERM; killed")
	}
}
