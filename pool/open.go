package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/pgtimeout"
)

// Open parses dsn, checks it against the TLS floor, connects once to read
// the server's connection limits and size the pool, and returns the pool.
// A DSN that does not parse, an insecure TLS setting, an unreachable host,
// a wrong password or database, and a size that cannot fit all fail here.
// With [Options.Lazy] nothing is dialled until first use. An empty DSN
// is refused with [ErrInvalid], and a ctx already done fails Open, lazy
// or not.
//
// No error Open returns, nor anything it logs, holds the password or the
// DSN.
func Open(ctx context.Context, dsn string, opts Options) (*Pool, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(dsn) == "" {
		// pgx would connect to whatever the PG* environment variables
		// and its defaults name: most often an unset variable, not a wish.
		return nil, fmt.Errorf("%w: the connection string is empty; to take everything from the PG* environment variables, pass at least one keyword, such as \"sslmode=verify-full\"", ErrInvalid)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pool: open: %w", context.Cause(ctx))
	}
	log := opts.logger()
	stripped, password := splitPassword(dsn)
	if err := checkPassfile(stripped, password, opts); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(stripped)
	if err != nil {
		return nil, parseError(err, dsn)
	}
	if password != "" {
		cfg.ConnConfig.Password = password
	}
	secrets := []string{password, cfg.ConnConfig.Password}
	applyDefaults(cfg, opts)
	if opts.Configure != nil {
		opts.Configure(cfg)
	}
	applyJitter(cfg)
	if err := checkTLS(&cfg.ConnConfig.Config, opts); err != nil {
		return nil, err
	}

	acquireTimeout := orDefault(opts.AcquireTimeout, DefaultAcquireTimeout)
	leakThreshold := orDefault(opts.LeakThreshold, DefaultLeakThreshold)
	t := newTracker(acquireTimeout, opts.CaptureStacks, log)
	ro := &readOnlyReset{log: log}
	installHooks(cfg, opts, t, ro)

	var limits *Limits
	if !opts.Lazy {
		l, err := probe(ctx, cfg)
		if err != nil {
			return nil, scrubConnectError(err, secrets)
		}
		limits = &l
	}
	if opts.MaxConns == 0 && dsnHas(stripped, "pool_max_conns") {
		opts.MaxConns = cfg.MaxConns // the DSN's pool_max_conns is an explicit size
	}
	s, err := fit(opts, limits)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = s.maxConns
	// After the probe, so that its connection is not counted.
	t.gate.limit, t.gate.max = opts.maxConnecting(), cfg.MaxConns
	t.gate.install(cfg)
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}

	hosts, tlsDesc := describeConn(&cfg.ConnConfig.Config)
	p := &Pool{
		t:   t,
		log: log,
		config: Config{
			Hosts: hosts, Database: cfg.ConnConfig.Database, User: cfg.ConnConfig.User, TLS: tlsDesc,
			ApplicationName: cfg.ConnConfig.RuntimeParams["application_name"],
			MaxConns:        s.maxConns, Instances: opts.instances(),
			AcquireTimeout: max(acquireTimeout, 0), LeakThreshold: max(leakThreshold, 0),
			CaptureStacks: opts.CaptureStacks, Lazy: opts.Lazy, Sizing: s.why,
		},
		limits:  limits,
		secrets: secrets,
	}
	p.pgx, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, scrubConnectError(err, secrets)
	}
	ro.pool.Store(p.pgx)
	for _, w := range s.warnings {
		log.LogAttrs(ctx, slog.LevelWarn, "pool: "+w)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "pool: open", slog.Any("config", p.config))
	pingEvery := orDefault(opts.IdlePing, DefaultIdlePing)
	if leakThreshold > 0 || pingEvery > 0 {
		p.stopBackground, p.backgroundDone = make(chan struct{}), make(chan struct{})
		go p.background(leakThreshold, pingEvery, cfg.PingTimeout, p.stopBackground, p.backgroundDone)
	}
	return p, nil
}

// parseError is pgx's parse error without the connection string it
// carries (pgconn.ParseConfigError.ConnString) and without any password
// in its text.
func parseError(err error, dsn string) error {
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		// "cannot parse `<dsn, partly masked>`: <reason>"
		if i := strings.Index(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
	}
	msg = scrub(msg, passwordCandidates(dsn))
	return fmt.Errorf("%w: the connection string does not parse (not shown: it may hold a password): %s", ErrInvalid, msg)
}

// applyDefaults sets the documented defaults where neither the DSN nor
// the options chose otherwise.
func applyDefaults(cfg *pgxpool.Config, o Options) {
	rp := cfg.ConnConfig.RuntimeParams
	setParam := func(name, value string) {
		if _, ok := rp[name]; !ok && value != "" {
			rp[name] = value
		}
	}
	app := o.ApplicationName
	if app == "" {
		app = filepath.Base(os.Args[0])
	}
	setParam("application_name", app)
	for _, s := range []struct {
		name string
		d    time.Duration
	}{
		{"statement_timeout", o.StatementTimeout},
		{"lock_timeout", o.LockTimeout},
		{"idle_in_transaction_session_timeout", orDefault(o.IdleInTransactionTimeout, DefaultIdleInTransactionTimeout)},
	} {
		if v, ok := pgtimeout.Setting(s.d); ok {
			setParam(s.name, v)
		}
	}
	if ka := orDefault(o.KeepAlive, DefaultKeepAlive); ka > 0 {
		secs := strconv.Itoa(max(int(ka/time.Second), 1))
		setParam("tcp_keepalives_idle", secs)
		setParam("tcp_keepalives_interval", secs)
		setParam("tcp_keepalives_count", "3")
		d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: ka, Interval: ka, Count: 3}}
		cfg.ConnConfig.DialFunc = d.DialContext
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = orDefault(o.ConnectTimeout, DefaultConnectTimeout)
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
}

// applyJitter gives connections a lifetime jitter of a tenth of their
// lifetime, unless one was chosen, so that connections opened together
// (at start, after a failover) are not all replaced at once. It runs after
// Configure, which may have changed the lifetime.
func applyJitter(cfg *pgxpool.Config) {
	if cfg.MaxConnLifetimeJitter == 0 {
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}
}

// installHooks adds the tracker as pgxpool's acquire and release tracer
// (beside the caller's tracer) and the password callback, keeping hooks
// the caller set.
func installHooks(cfg *pgxpool.Config, o Options, t *tracker, ro *readOnlyReset) {
	user := o.Tracer
	if user == nil {
		user = cfg.ConnConfig.Tracer
	}
	mt := &multitracer.Tracer{}
	if user != nil {
		mt = multitracer.New(user)
	}
	mt.QueryTracers = append(mt.QueryTracers, ro)
	mt.BatchTracers = append(mt.BatchTracers, ro) // statements in batches fail with 25006 too
	mt.PoolAcquireTracers = append([]pgxpool.AcquireTracer{t}, mt.PoolAcquireTracers...)
	mt.PoolReleaseTracers = append([]pgxpool.ReleaseTracer{t}, mt.PoolReleaseTracers...)
	cfg.ConnConfig.Tracer = mt

	if o.Password != nil {
		prev := cfg.BeforeConnect
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			if prev != nil {
				if err := prev(ctx, cc); err != nil {
					return err
				}
			}
			pw, err := o.Password(ctx)
			if err != nil {
				return fmt.Errorf("pool: the Password function: %w", err)
			}
			cc.Password = pw
			return nil
		}
	}
}

// probe connects once, the way the pool will, and reads the server's limits.
func probe(ctx context.Context, cfg *pgxpool.Config) (Limits, error) {
	cc := cfg.ConnConfig.Copy()
	if cfg.BeforeConnect != nil {
		if err := cfg.BeforeConnect(ctx, cc); err != nil {
			return Limits{}, err
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return Limits{}, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if cfg.AfterConnect != nil {
		if err := cfg.AfterConnect(ctx, conn); err != nil {
			return Limits{}, err
		}
	}
	return readLimits(ctx, conn)
}
