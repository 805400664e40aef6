// Package pgtest finds a PostgreSQL server for tests and gives each test a
// fresh database of its own. Example programs do not use it: they take
// -dsn or DATABASE_URL, else start a cluster with internal/devdb.
//
// The server is resolved once per process, in this order:
//
//  1. TEST_DATABASE_URL, if set: a server the tests may create databases on;
//  2. a reachable Docker daemon: a container from testcontainers-go's postgres
//     module;
//  3. PostgreSQL server binaries on the machine (initdb and postgres on PATH,
//     in `pg_config --bindir`, or under /usr/lib/postgresql/*/bin): a
//     throwaway cluster in a temporary directory (internal/devdb), run as the
//     "postgres" user when the process is root;
//  4. otherwise an error that says how to provide one of the three.
//
// A test package calls [Main] from its TestMain so that a server started for
// it is stopped when the package's tests end, and so that leaked goroutines
// fail the run:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Each test then asks for a pool on a database nobody else uses:
//
//	pool := pgtest.NewPool(t)
//
// The database is dropped in cleanup, and cleanup fails the test if the pool
// still has acquired connections: a leaked connection is a bug. Most tests
// start from [Setup], which adds a ctx bounded by [SetupTimeout] and the
// schema the test needs; it leaves t.Parallel to the test:
//
//	t.Parallel()
//	b := pgtest.Setup(t, pgtest.Schema("CREATE TABLE items (id int PRIMARY KEY)"))
//	_, err := b.Pool.Exec(b.Ctx, "INSERT INTO items VALUES (1)")
//
// Example functions have no *testing.T; they open their own pool on a fresh
// database from [DatabaseURL], as a program would on its database:
//
//	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
//
// Advisory locks are per database, so tests that take them do not see each
// other's locks.
//
// A test that needs a server with settings of its own (a small
// max_connections, ssl=on, its own hba_file) starts one with
// [StartClusterWith]; one shared by several tests of a package is stopped
// by a function given to [AtExit].
//
// A test of replica reads or failover starts a primary with streaming hot
// standbys with [NewReplicated] (closed when the test ends, skipped with
// the reason when the machine has no server binaries), and waits for a
// replica to catch up with [WaitReplayed]:
//
//	r := pgtest.NewReplicated(t, pgtest.ReplicationOptions{Replicas: 2})
//	// write on r.Primary.URL(), then
//	err := pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0])
package pgtest
