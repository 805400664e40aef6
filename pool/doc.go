// Package pool opens the shared connection pool the rest of txkit runs on,
// with the connection-side concerns pgxpool leaves to each service made
// safe by default: a size that fits the server's limits, an acquire
// timeout with a typed error, leak reports, a bounded Close, a TLS floor,
// and secrets kept out of errors and logs.
//
//	p, err := pool.Open(ctx, os.Getenv("DATABASE_URL"), pool.Options{Instances: 4, Logger: logger})
//	if err != nil { ... }
//	defer p.Close(shutdownCtx)
//	err = txn.WithTx(ctx, p, txn.Options{}, fn)
//
// [Pool] implements txn.Beginner and txn.Querier, and [Pool.Pgx] returns
// the *pgxpool.Pool under it for code that needs one (advisory locks, sqlc,
// otelpgx). The pool is pgxpool's: this package adds an AcquireTracer and
// ReleaseTracer and sets hooks and settings, so the acquire timeout and the
// leak reports hold on the *pgxpool.Pool too.
//
// # Defaults
//
// Every [Options] field's zero value is a default chosen to be safe:
//
//	Option                    Zero value means
//	Instances                 1
//	MaxConns                  pgxpool's default, max(4, CPUs), lowered to this instance's share
//	                          of the server's limits (see Sizing); an explicit value that cannot
//	                          fit is refused with ErrDoesNotFit
//	AcquireTimeout            5 s; negative: only the caller's ctx bounds the wait
//	LeakThreshold             1 min; negative: no leak reports
//	CaptureStacks             off (a stack costs 1–2 µs per acquire; see the README)
//	AllowInsecure             off: sslmode disable, allow and prefer (libpq's default) are refused
//	                          to a host that is not loopback or a unix socket
//	VerifyFull                off: any sslmode from require up is accepted
//	Logger                    discard
//	Lazy                      off: Open connects once and reads the server's limits
//	ApplicationName           the program's name (application_name)
//	StatementTimeout          the server's setting (statement_timeout)
//	LockTimeout               the server's setting (lock_timeout)
//	IdleInTransactionTimeout  1 min (idle_in_transaction_session_timeout); negative: not sent
//	KeepAlive                 30 s idle, then probes every 30 s, 3 probes; both on the client
//	                          socket and the server's (tcp_keepalives_*); negative: the OS's,
//	                          nothing sent
//	ConnectTimeout            10 s per new connection (connect_timeout in the DSN wins);
//	                          a server that accepts the connection and never answers fails
//	                          Open after it with an error matching context.DeadlineExceeded
//	MaxConnecting             2 connections opened at once when none is idle; negative: no bound
//	IdlePing                  every 30 s each idle connection is pinged (5 s timeout) and closed
//	                          if it does not answer; negative: only pgxpool's ping on acquire;
//	                          below MinIdlePing (10 ms): refused
//	Password                  the DSN's, else PGPASSWORD, else the passfile, which is refused
//	                          (ErrInsecure) if its group or others may access it, as libpq does
//	Workers, ConnsPerWorker   no deadlock-floor check
//	Tracer, Configure         none
//
// pgxpool settings that have no option are taken from the DSN (pool_*
// parameters, or Configure) with these defaults: PingTimeout 5 s (pgxpool:
// none), MaxConnLifetime 1 h with a jitter of a tenth of the lifetime,
// whatever set it (pgxpool: no jitter), MaxConnIdleTime 30 min,
// HealthCheckPeriod 1 min.
//
// An empty DSN is refused (ErrInvalid) rather than left to pgx, which
// would connect to whatever the PG* environment variables and its
// defaults name; pass at least one keyword to mean that. A ctx already
// done fails Open, lazy or not.
//
// The server-side settings (application_name, the three timeouts, TCP
// keepalives) travel in the startup message: they cost no round trip, and
// a value the DSN sets wins over the option. A service should set
// statement_timeout and lock_timeout to what its requests can afford; the
// defaults leave them to the server because only the service knows.
//
// PgBouncer refuses startup settings it does not track ("unsupported
// startup parameter"). Behind it, set IdleInTransactionTimeout and
// KeepAlive to -1 and leave StatementTimeout and LockTimeout at 0, and set
// those timeouts on the role instead (ALTER ROLE app SET statement_timeout
// = '5s'), so every server connection PgBouncer opens has them.
//
// # Sizing
//
// Open reads, in one query, max_connections, superuser_reserved_connections,
// reserved_connections (PostgreSQL 16+), the role's connection limit, the
// database's connection limit, and how many client connections each
// already has. For each limit that applies (the role's and the database's
// do not apply to a superuser), this instance's room is the smaller of
// limit / Instances and what is free now. A MaxConns of 0 is lowered to the
// smallest room; an explicit MaxConns (or pool_max_conns in the DSN) ×
// Instances over a limit is refused, and one over what is free now is
// logged as a warning. The reserved slots
// are never planned for. Behind a connection pooler (the backend pid the
// server reports differs from the one the connection was given), the
// server's limits are not the ones that count: Open logs that and applies
// none. Workers and ConnsPerWorker refuse a pool smaller than
// Workers × (ConnsPerWorker − 1) + 1, the size below which workers that
// each hold a connection and wait for a second (RequiresNew, a session
// advisory lock) can deadlock on the pool.
//
// # Acquire timeout
//
// Every acquire, through [Pool] or its *pgxpool.Pool (BeginTx, Query, Exec,
// QueryRow, SendBatch, CopyFrom, Acquire), waits at most AcquireTimeout,
// independently of the ctx deadline of the work that follows. A longer wait
// fails with a [*TimeoutError] matching [ErrPoolTimeout] (and
// context.DeadlineExceeded), whose text gives the pool's max, total,
// acquired, idle and waiting counts. When the caller's own ctx ends first,
// its error is returned as usual. One ticker per pool enforces the
// timeout for every acquire, rather than a timer each, so the error comes
// after at least AcquireTimeout and at most two ticks later (a tick is a
// tenth of the timeout, from 1 ms to 20 ms), scheduling delays aside; the
// ticker runs only while acquires happen.
//
// # Connection storms
//
// Under pgxpool every acquire that finds no idle connection below MaxConns
// opens a new one, even when another is released a moment later: a spike
// of 50 requests opens 50 server processes. Here at most MaxConnecting
// connections are opened at once; other acquires wait (within the acquire
// timeout) for a connection to be released or opened, and a released
// connection goes to a waiter before another is opened. With 150 ms
// connects, 2 ms queries and 50 concurrent requests on a cold pool of 50,
// the pool opened 4 to 5 connections and pgxpool 50
// (TestConnectionStormIsBounded).
//
// # Leaks
//
// A connection held longer than LeakThreshold is logged once at Warn level
// with how long it has been held and, with CaptureStacks, the stack that
// acquired it; when it comes back, "leaked connection returned" is logged
// with the total time held. Rows left open, an unclosed batch, a forgotten
// Release and a Hijacked connection still open are all seen. Acquire with a
// ctx from [HeldOnPurpose] to exempt a connection held on purpose. The
// advisory package marks its own: a session lock's connection is listed by
// [Pool.Held] as `advisory lock "name"`, a Lead campaign's as
// `advisory leader "name"`, and neither is reported as a leak.
//
// # Health
//
// Idle connections are pinged every IdlePing, each bounded by the ping
// timeout, and one that does not answer is closed before a request gets
// it. Connections live MaxConnLifetime plus up to 10% jitter, so they are
// not all replaced at once. A statement that fails with 25006
// (read_only_sql_transaction) on a connection whose server reports
// in_hot_standby or default_transaction_read_only (PostgreSQL 14+; no
// round trip) means a failover left the pool on a read-only server: the
// pool is reset, at most once a second, so new connections reach the
// primary. The failing call still gets its error. A 25006 from a
// transaction begun READ ONLY leaves the pool alone.
//
// # Close
//
// [Pool.Close] refuses new acquires at once, waits for held connections
// (and for acquires already under way) until its ctx is done, and then
// logs each holder with its label (see [HeldOnPurpose]), closes their
// sockets and returns a [*CloseError] naming them, instead of hanging as
// pgxpool's Close does on a leaked connection. Acquires still waiting when
// Close ends fail with [ErrClosed], with or without an acquire timeout.
// Close may be called more than once and from several goroutines: each
// call returns the first one's result, or its own ctx's error if that
// ends first. Close on a nil *Pool returns nil.
//
// # Secrets and TLS
//
// Open parses the DSN with its password removed and puts the password in
// the parsed config, so pgxpool's Config().ConnString() holds none. No
// error that Open or a [Pool] method returns carries the DSN or lets
// errors.As reach a *pgconn.ParseConfigError or a *pgconn.ConnectError
// (both carry the password); connect failures, at Open or later, are a
// [*ConnectError] that unwraps to the cause (a *pgconn.PgError for a wrong
// password or database). Code given [Pool.Pgx] gets pgx's errors as they
// are. [Config] has
// no password field and implements slog.LogValuer; [Redact] masks the
// passwords in a DSN, including ?password=. [Options.Password] supplies a
// password per new connection for credentials that rotate; [PasswordFile]
// and [PasswordEnv] read it from a file (with the passfile's permission
// check) or an environment variable each time.
package pool
