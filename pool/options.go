package pool

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/internal/pgtimeout"
)

// Defaults used when an [Options] field is zero. The table in the package
// documentation lists them with the reason for each.
const (
	DefaultAcquireTimeout           = 5 * time.Second
	DefaultLeakThreshold            = time.Minute
	DefaultIdleInTransactionTimeout = time.Minute
	DefaultKeepAlive                = 30 * time.Second
	DefaultConnectTimeout           = 10 * time.Second
	DefaultPingTimeout              = 5 * time.Second
	DefaultIdlePing                 = 30 * time.Second
	DefaultMaxConnecting            = 2
	DefaultMaxConnLifetime          = time.Hour
	DefaultMaxConnIdleTime          = 30 * time.Minute
)

// MinIdlePing is the shortest [Options.IdlePing] accepted. Each ping is a
// round trip on every idle connection; a shorter interval would keep the
// pool and the server busy pinging, and usually means a lost unit (an
// IdlePing of 30 is 30 nanoseconds, not 30 seconds).
const MinIdlePing = 10 * time.Millisecond

// Options configure [Open]. The zero value of every field is a safe
// default; see the package documentation for the table.
type Options struct {
	// Instances is how many instances of the service share the server's
	// connection limit. 0 = 1.
	Instances int
	// MaxConns is the pool's size. 0 = pgxpool's default (the greater of 4
	// and the number of CPUs), lowered to this instance's share of the
	// server's limits. An explicit size that cannot fit is refused.
	MaxConns int32
	// AcquireTimeout bounds the wait for a connection, separately from the
	// caller's ctx; a longer wait fails with [ErrPoolTimeout].
	// 0 = [DefaultAcquireTimeout]; negative = no bound but the caller's ctx.
	AcquireTimeout time.Duration
	// LeakThreshold: a connection held longer is reported once through
	// Logger. 0 = [DefaultLeakThreshold]; negative = no leak detection.
	LeakThreshold time.Duration
	// CaptureStacks makes leak and Close reports carry the stack that
	// acquired the connection.
	CaptureStacks bool
	// AllowInsecure permits an sslmode that may send the session in
	// plaintext (disable, allow, prefer) to a host that is not loopback or
	// a unix socket.
	AllowInsecure bool
	// VerifyFull refuses any TLS setting but sslmode=verify-full: the
	// server's certificate is checked and so is its name.
	VerifyFull bool
	// Logger receives leak reports, acquire timeouts and sizing decisions.
	// nil = discard.
	Logger *slog.Logger

	// Lazy makes Open return without connecting and without reading the
	// server's limits; the first use connects. MaxConns is then not checked
	// against the server.
	Lazy bool
	// ApplicationName is sent at connect as application_name, unless the
	// DSN sets one. "" = the program's name.
	ApplicationName string
	// StatementTimeout, LockTimeout and IdleInTransactionTimeout are sent at
	// connect as the session defaults statement_timeout, lock_timeout and
	// idle_in_transaction_session_timeout, in the startup message (no extra
	// round trip). A setting in the DSN wins. StatementTimeout and
	// LockTimeout: 0 = the server's setting. IdleInTransactionTimeout:
	// 0 = [DefaultIdleInTransactionTimeout], negative = not sent (behind
	// PgBouncer, which refuses startup settings it does not track; set it
	// on the role instead).
	StatementTimeout, LockTimeout, IdleInTransactionTimeout time.Duration
	// KeepAlive is the TCP keepalive idle time, on the client socket and
	// (tcp_keepalives_idle) on the server's. 0 = [DefaultKeepAlive];
	// negative = the operating system's settings, and nothing sent.
	KeepAlive time.Duration
	// IdlePing is how often idle connections are pinged (each bounded by
	// the pool's ping timeout, 5 s unless the DSN's pool_ping_timeout
	// says otherwise); one that does not answer is closed before a request
	// gets it. 0 = [DefaultIdlePing]; negative = no pings but pgxpool's own
	// on acquire; a positive interval below [MinIdlePing] is refused.
	IdlePing time.Duration
	// MaxConnecting bounds how many new connections are opened at once
	// when no connection is idle; further acquires wait for a connection
	// to be released or opened instead of each opening its own (see the
	// package documentation). 0 = [DefaultMaxConnecting]; negative = no
	// bound (pgxpool's behaviour).
	MaxConnecting int32
	// ConnectTimeout bounds each new connection when the DSN has no
	// connect_timeout. 0 = [DefaultConnectTimeout].
	ConnectTimeout time.Duration
	// Password, when set, is called for every new connection (in
	// pgxpool's BeforeConnect) and its result used as the password: for
	// credentials that rotate, such as cloud IAM tokens.
	Password func(ctx context.Context) (string, error)
	// Workers and ConnsPerWorker describe the heaviest concurrent use: a
	// worker that holds a connection and takes another (a RequiresNew
	// transaction, a session advisory lock) needs 2. A pool smaller than
	// Workers × (ConnsPerWorker − 1) + 1 can deadlock on itself and is
	// refused. 0 = no check.
	Workers, ConnsPerWorker int
	// Tracer is the pgx tracer for every connection. Tracers that also
	// implement pgxpool.AcquireTracer or ReleaseTracer get those events too.
	Tracer pgx.QueryTracer
	// Configure, if set, may change the pgxpool config parsed from the DSN
	// before Open adds its own settings and hooks; hooks it sets are kept
	// and run before Open's.
	Configure func(*pgxpool.Config)
}

// check refuses option values that cannot be meant, all of them in one
// error matching ErrInvalid.
func (o Options) check() error {
	var p invalid.Problems
	if o.Instances < 0 {
		p.Add("option Instances is negative (%d)", o.Instances)
	}
	if o.MaxConns < 0 {
		p.Add("option MaxConns is negative (%d)", o.MaxConns)
	}
	if o.Workers < 0 || o.ConnsPerWorker < 0 {
		p.Add("options Workers (%d) and ConnsPerWorker (%d) must not be negative", o.Workers, o.ConnsPerWorker)
	}
	p.AddErr(pgtimeout.Check("StatementTimeout", o.StatementTimeout))
	p.AddErr(pgtimeout.Check("LockTimeout", o.LockTimeout))
	p.AddErr(pgtimeout.Check("IdleInTransactionTimeout", max(o.IdleInTransactionTimeout, 0))) // negative: not sent
	if o.ConnectTimeout < 0 {
		p.Add("option ConnectTimeout is negative (%v)", o.ConnectTimeout)
	}
	if o.IdlePing > 0 && o.IdlePing < MinIdlePing {
		p.Add("option IdlePing (%v) is below MinIdlePing (%v); a negative IdlePing turns pings off", o.IdlePing, MinIdlePing)
	}
	return p.Err(ErrInvalid)
}

func (o Options) instances() int {
	if o.Instances == 0 {
		return 1
	}
	return o.Instances
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) maxConnecting() int32 {
	if o.MaxConnecting == 0 {
		return DefaultMaxConnecting
	}
	return o.MaxConnecting
}
