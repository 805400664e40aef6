package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// admin is a small pool on the shared server used to create and drop the
// per-test databases.
var admin struct {
	mu   sync.Mutex
	pool *pgxpool.Pool
}

func adminPool(ctx context.Context) (*Server, *pgxpool.Pool, error) {
	srv, err := SharedServer(ctx)
	if err != nil {
		return nil, nil, err
	}
	admin.mu.Lock()
	defer admin.mu.Unlock()
	if admin.pool == nil {
		cfg, err := pgxpool.ParseConfig(srv.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("pgtest: server URL: %w", err)
		}
		cfg.MaxConns = 4
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		admin.pool = p
	}
	return srv, admin.pool, nil
}

func closeAdmin() {
	admin.mu.Lock()
	defer admin.mu.Unlock()
	if admin.pool != nil {
		admin.pool.Close()
		admin.pool = nil
	}
}

// CreateDatabase makes a new empty database on the shared server and returns
// its connection string and a function that drops it (ending any sessions
// still connected to it).
func CreateDatabase(ctx context.Context) (dsn string, drop func(context.Context) error, err error) {
	srv, pool, err := adminPool(ctx)
	if err != nil {
		return "", nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "txkit_test_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database: %w", err)
	}
	dsn, err = withDatabase(srv.URL, name)
	if err != nil {
		return "", nil, err
	}
	drop = func(ctx context.Context) error {
		_, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		return err
	}
	return dsn, drop, nil
}

// NewDatabase creates a fresh database for t, dropped when t ends, and
// returns its connection string.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, drop, err := CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return dsn
}

// NewPool gives t a pool on a fresh database of its own. configure, if not
// nil, may change the pool's config before it is created. In cleanup the
// test fails if the pool still has acquired connections; then the pool is
// closed and the database dropped.
func NewPool(t testing.TB, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	return NewPoolOn(t, NewDatabase(t), configure...)
}

// NewPoolOn is NewPool on an existing database: a second pool on a
// database from NewDatabase, say, with the same leak check at cleanup.
func NewPoolOn(t testing.TB, dsn string, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range configure {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n := SettledAcquiredConns(pool)
		if n == 0 {
			pool.Close()
			return
		}
		t.Errorf("pgtest: pool still has %d acquired connection(s) at the end of the test: a connection leaked", n)
		// Close waits for every acquired connection to come back; a leaked
		// one never does, so wait a little and then leave it to the drop.
		closed := make(chan struct{})
		go func() { pool.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
	})
	return pool
}

// DatabaseURL creates a fresh database on the shared test server and
// returns its connection string, for code that has no *testing.T: Example
// functions open their pool on it as a program would on its own database.
// The caller closes what it opens; the database is dropped when the
// package's tests end, by [Main]. It panics if no server can be had.
func DatabaseURL() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, drop, err := CreateDatabase(ctx)
	if err != nil {
		panic(err)
	}
	AtExit(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := drop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: drop database: %v\n", err)
		}
	})
	return dsn
}

// withDatabase returns the connection string dsn with its database replaced
// by name, keeping every other setting (TLS mode, password, options).
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgtest: server URL does not parse")
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form: a later keyword wins over an earlier one.
	return dsn + " dbname=" + name, nil
}

// Connect opens a single connection for t, closed when t ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(context.Background())) })
	return conn
}

// RoundTrips counts the writes clients make on the connections of a pool
// configured with CountRoundTrips. pgx sends each query, and each pipelined
// group of messages, in one write and then waits for the answer, so after
// connecting the count of writes is the count of network round trips.
type RoundTrips struct{ n atomic.Int64 }

// Load returns the writes counted since the last Reset.
func (r *RoundTrips) Load() int64 { return r.n.Load() }

// Reset sets the count to zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

// CountRoundTrips makes cfg's connections count their writes in the
// returned counter. Use it as a NewPool configure function's body.
func CountRoundTrips(cfg *pgxpool.Config) *RoundTrips {
	rt := &RoundTrips{}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, rt: rt}, nil
	}
	return rt
}

type countingConn struct {
	net.Conn
	rt *RoundTrips
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.rt.n.Add(1)
	return c.Conn.Write(b)
}

// settleTimeout bounds the wait for connections being destroyed. Closing a
// connection whose TLS session broke mid-write can take pgx 15 seconds.
var settleTimeout = 20 * time.Second

// SettledAcquiredConns returns how many connections of pool are acquired,
// after giving connections being destroyed a moment to go: pgxpool destroys
// a broken connection in the background, and counts it as acquired until
// then. A connection still acquired after that is held by someone.
func SettledAcquiredConns(pool *pgxpool.Pool) int32 {
	deadline := time.Now().Add(settleTimeout)
	for {
		n := pool.Stat().AcquiredConns()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitUntilBlocked returns once the backend with pid waits for a lock. It
// polls pg_locks through db: a test uses it to be sure a statement reached
// its lock wait before making the next move, not to measure time.
func WaitUntilBlocked(ctx context.Context, t testing.TB, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, pid uint32) {
	t.Helper()
	for {
		var waiting bool
		err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", int32(pid)).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backend %d never blocked on a lock", pid)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Concurrently runs op perWorker times on each of workers goroutines and
// fails t with the errors op returned; a worker stops at its first error.
func Concurrently(t testing.TB, workers, perWorker int, op func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if err := op(); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}
