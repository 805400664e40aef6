package txotel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/pool"
)

// SemconvVersion is the version of the OpenTelemetry semantic conventions
// the pool metrics follow. The database metrics are of status
// "development" there; later versions rename db.client.connection.max to
// .limit.
const SemconvVersion = "v1.41.0"

// PoolOptions describe the pool in its metrics' attributes. None of them
// may hold a secret; txotel never reads the DSN.
type PoolOptions struct {
	// Name is db.client.connection.pool.name; "" = "default".
	Name string
	// Namespace is db.namespace (the database name); "" = not set.
	Namespace string
	// ServerAddress and ServerPort are server.address and server.port;
	// zero = not set.
	ServerAddress string
	ServerPort    int
}

// PoolMetrics records the semantic-convention connection pool metrics.
// Its tracer half (set it as pool.Options.Tracer, in a pgx multitracer
// beside otelpgx, or as pgxpool's ConnConfig.Tracer) gives
// pending_requests, timeouts, wait_time, use_time and create_time; its
// [PoolMetrics.Observe] half gives count, max and idle.min from the pool.
type PoolMetrics struct {
	meter metric.Meter
	attrs metric.MeasurementOption
	idle  metric.MeasurementOption
	used  metric.MeasurementOption

	pending    metric.Int64UpDownCounter
	timeouts   metric.Int64Counter
	waitTime   metric.Float64Histogram
	useTime    metric.Float64Histogram
	createTime metric.Float64Histogram
	lockNA     metric.Int64Counter

	mu       sync.Mutex
	acquired map[*pgx.Conn]time.Time
}

var (
	_ pgx.QueryTracer       = (*PoolMetrics)(nil)
	_ pgx.ConnectTracer     = (*PoolMetrics)(nil)
	_ pgxpool.AcquireTracer = (*PoolMetrics)(nil)
	_ pgxpool.ReleaseTracer = (*PoolMetrics)(nil)
)

// Pool makes the metrics of one pool, from the Observer's meter.
func (o *Observer) Pool(opts PoolOptions) (*PoolMetrics, error) {
	name := opts.Name
	if name == "" {
		name = "default"
	}
	kv := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.DBClientConnectionPoolName(name)}
	if opts.Namespace != "" {
		kv = append(kv, semconv.DBNamespace(opts.Namespace))
	}
	if opts.ServerAddress != "" {
		kv = append(kv, semconv.ServerAddress(opts.ServerAddress))
	}
	if opts.ServerPort != 0 {
		kv = append(kv, semconv.ServerPort(opts.ServerPort))
	}
	set := attribute.NewSet(slices.Clone(kv)...) // NewSet sorts its argument in place
	p := &PoolMetrics{
		meter:    o.meter,
		attrs:    metric.WithAttributeSet(set),
		idle:     metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(kv), semconv.DBClientConnectionStateIdle)...)),
		used:     metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(kv), semconv.DBClientConnectionStateUsed)...)),
		acquired: make(map[*pgx.Conn]time.Time),
	}
	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := o.meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	var err error
	p.pending, err = o.meter.Int64UpDownCounter("db.client.connection.pending_requests", metric.WithUnit("{request}"),
		metric.WithDescription("The number of current pending requests for an open connection."))
	errs = append(errs, err)
	p.timeouts, err = o.meter.Int64Counter("db.client.connection.timeouts", metric.WithUnit("{timeout}"),
		metric.WithDescription("The number of connection timeouts that have occurred trying to obtain a connection from the pool."))
	errs = append(errs, err)
	p.waitTime = hist("db.client.connection.wait_time", "The time it took to obtain an open connection from the pool.")
	p.useTime = hist("db.client.connection.use_time", "The time between borrowing a connection and returning it to the pool.")
	p.lockNA, err = o.meter.Int64Counter("txkit.locks.not_available", metric.WithUnit("{statement}"),
		metric.WithDescription("Statements that failed with SQLSTATE 55P03 (lock_not_available): a row lock's NOWAIT or lock_timeout."))
	errs = append(errs, err)
	p.createTime = hist("db.client.connection.create_time", "The time it took to create a new connection.")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

type acquireKey struct{}

// TraceAcquireStart counts a pending request.
func (p *PoolMetrics) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	p.pending.Add(ctx, 1, p.attrs)
	return context.WithValue(ctx, acquireKey{}, time.Now())
}

// TraceAcquireEnd records the wait, and a timeout when the pool's acquire
// timeout (pool.ErrPoolTimeout) ended it.
func (p *PoolMetrics) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	p.pending.Add(ctx, -1, p.attrs)
	if start, ok := ctx.Value(acquireKey{}).(time.Time); ok {
		p.waitTime.Record(ctx, time.Since(start).Seconds(), p.attrs)
	}
	if errors.Is(d.Err, pool.ErrPoolTimeout) {
		p.timeouts.Add(ctx, 1, p.attrs)
	}
	if d.Err == nil && d.Conn != nil {
		p.mu.Lock()
		p.acquired[d.Conn] = time.Now()
		p.mu.Unlock()
	}
}

// TraceRelease records how long the connection was used.
func (p *PoolMetrics) TraceRelease(_ *pgxpool.Pool, d pgxpool.TraceReleaseData) {
	p.mu.Lock()
	start, ok := p.acquired[d.Conn]
	delete(p.acquired, d.Conn)
	p.mu.Unlock()
	if ok {
		p.useTime.Record(context.Background(), time.Since(start).Seconds(), p.attrs)
	}
}

type connectKey struct{}

// TraceConnectStart notes when a new connection was started.
func (p *PoolMetrics) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return context.WithValue(ctx, connectKey{}, time.Now())
}

// TraceConnectEnd records how long a successful connect took.
func (p *PoolMetrics) TraceConnectEnd(ctx context.Context, d pgx.TraceConnectEndData) {
	if start, ok := ctx.Value(connectKey{}).(time.Time); ok && d.Err == nil {
		p.createTime.Record(ctx, time.Since(start).Seconds(), p.attrs)
	}
}

// TraceQueryStart does nothing.
func (p *PoolMetrics) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd counts statements that could not take a lock in time
// (SQLSTATE 55P03: NOWAIT, or lock_timeout, as locks.ErrLockNotAvailable
// reports them) in txkit.locks.not_available.
func (p *PoolMetrics) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	p.countLockNA(ctx, d.Err)
}

// PoolMetrics is a pgx.BatchTracer too: it counts a batched statement
// that could not take a lock in time as TraceQueryEnd counts one sent
// alone (a locking read with a lock_timeout goes in a batch, and so does
// the first statement of a txn.WithTx transaction, behind its BEGIN), and
// in pgx's multitracer beside otelpgx it does not keep batches from the
// connection.
var _ pgx.BatchTracer = (*PoolMetrics)(nil)

// TraceBatchStart does nothing.
func (p *PoolMetrics) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery counts a batched statement that could not take a lock in
// time, as TraceQueryEnd does.
func (p *PoolMetrics) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	p.countLockNA(ctx, d.Err)
}

// TraceBatchEnd does nothing.
func (p *PoolMetrics) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// countLockNA counts err in txkit.locks.not_available if it is 55P03.
func (p *PoolMetrics) countLockNA(ctx context.Context, err error) {
	var pe *pgconn.PgError
	if err != nil && errors.As(err, &pe) && pe.Code == pgerrcode.LockNotAvailable {
		p.lockNA.Add(ctx, 1, p.attrs)
	}
}

// Observe reports db.client.connection.count{state}, .max and .idle.min
// of db (for a txkit pool, its Pgx()) at each collection, until the
// returned Registration is unregistered.
func (p *PoolMetrics) Observe(db *pgxpool.Pool) (metric.Registration, error) {
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		g, err := p.meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	count := gauge("db.client.connection.count", "{connection}", "The number of connections that are currently in state described by the `state` attribute.")
	maxC := gauge("db.client.connection.max", "{connection}", "The maximum number of open connections allowed.")
	idleMin := gauge("db.client.connection.idle.min", "{connection}", "The minimum number of idle open connections allowed.")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	minIdle := int64(max(db.Config().MinIdleConns, db.Config().MinConns))
	reg, err := p.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		st := db.Stat()
		ob.ObserveInt64(count, int64(st.IdleConns()), p.idle)
		ob.ObserveInt64(count, int64(st.AcquiredConns()), p.used)
		ob.ObserveInt64(maxC, int64(st.MaxConns()), p.attrs)
		ob.ObserveInt64(idleMin, minIdle, p.attrs)
		return nil
	}, count, maxC, idleMin)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return reg, nil
}
