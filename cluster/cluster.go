package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/txn"
)

// Cluster is a primary and its streaming replicas, each with its own
// [pool.Pool]. It implements txn.Router (and so txn.Beginner) and
// txn.Querier: WithTx sends read-write and unmarked work to the primary
// and ReadOnly work to a replica within the lag bound; Q outside a
// transaction runs on the primary. Which node is the primary is the
// checker's finding, not the configuration's: after a failover, writes go
// to the promoted node.
type Cluster struct {
	opts  Options
	nodes []*node

	mu  sync.Mutex // serializes changes of state and snap
	seq int64      // numbers promotions seen
	// timeline is the latest timeline a primary was seen writing on.
	timeline int64
	// walBlock is the WAL page size, from the checks (0 until one
	// answers: the default is assumed). See settled.
	walBlock atomic.Int64
	hist     history // the primary's WAL positions over time
	// lastPrimary is the last node found primary, also while none is.
	lastPrimary *node
	snap        atomic.Pointer[snapshot]

	kickCh chan struct{}
	life   context.Context // cancelled by Close: ends the checker and a round of checks
	end    context.CancelFunc
	done   chan struct{}
	rr     atomic.Uint64 // spreads reads over replicas

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool

	fallbacks, sessionWaits, sessionCaughtUp atomic.Int64
}

var (
	_ txn.Router  = (*Cluster)(nil)
	_ txn.Querier = (*Cluster)(nil)
)

// Open opens a pool on each node and starts the checker. dsns name the
// nodes, primary and replicas in any order: the checker finds each one's
// role. A single DSN naming several hosts (libpq's multi-host form, as a
// URL, "postgres://u@h1:5432,h2:5432/db", or keywords, "host=h1,h2
// port=5432") is one node per host, with every other setting kept. A node that
// cannot be reached at Open is opened lazily and joins routing when the
// checker finds it healthy; Open fails only if none can be reached. Open
// returns after one round of checks, so routing knows the primary at once
// if there is one; the round takes at most CheckTimeout.
//
// Close closes the pools Open opened.
func Open(ctx context.Context, dsns []string, opts Options) (*Cluster, error) {
	var p invalid.Problems
	if len(dsns) == 0 {
		p.Add("no node DSN given")
	}
	if len(dsns) == 1 {
		split, err := splitHosts(dsns[0])
		if err != nil {
			p.AddErr(err)
		} else {
			dsns = split
		}
	}
	for i, d := range dsns {
		if d == "" {
			p.Add("DSN %d is empty", i)
		}
	}
	p.AddErr(opts.check())
	if err := p.Err(ErrInvalid); err != nil {
		return nil, err
	}
	var pools []*pool.Pool
	closeAll := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, pl := range pools {
			_ = pl.Close(cctx)
		}
	}
	var errs []error
	reached := 0
	for _, d := range dsns {
		pl, err := pool.Open(ctx, d, opts.Pool)
		if err == nil {
			reached++
		} else {
			if errors.Is(err, pool.ErrInvalid) || errors.Is(err, pool.ErrInsecure) || errors.Is(err, pool.ErrDoesNotFit) || ctx.Err() != nil {
				closeAll()
				return nil, err
			}
			errs = append(errs, err)
			lazy := opts.Pool
			lazy.Lazy = true
			pl, err = pool.Open(ctx, d, lazy)
			if err != nil {
				closeAll()
				return nil, err
			}
		}
		pools = append(pools, pl)
	}
	if reached == 0 {
		closeAll()
		return nil, fmt.Errorf("cluster: no node could be reached: %w", errors.Join(errs...))
	}
	return start(pools, true, opts.withDefaults()), nil
}

// New makes a Cluster of pools the caller opened (with [pool.Open]), one
// per node, in any order, and starts the checker. Close stops the checker
// and leaves the pools open: they are the caller's to close, after the
// Cluster. New returns after one round of checks (at most CheckTimeout).
func New(ctx context.Context, pools []*pool.Pool, opts Options) (*Cluster, error) {
	var p invalid.Problems
	if len(pools) == 0 {
		p.Add("no pool given")
	}
	for i, pl := range pools {
		if pl == nil {
			p.Add("pool %d is nil", i)
		}
	}
	p.AddErr(opts.check())
	if err := p.Err(ErrInvalid); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return start(pools, false, opts.withDefaults()), nil
}

func start(pools []*pool.Pool, own bool, opts Options) *Cluster {
	c := &Cluster{
		opts:   opts,
		kickCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	c.life, c.end = context.WithCancel(context.Background())
	for _, pl := range pools {
		c.nodes = append(c.nodes, newNode(pl, own))
	}
	c.snap.Store(&snapshot{changed: make(chan struct{})})
	// The first round runs before the checker starts: a node's check
	// connection is only ever used by one round at a time.
	c.checkRound()
	go c.checker()
	return c
}

// Close stops the checker and closes the pools Open opened, within ctx's
// deadline. Work waiting for a primary or for a replica to catch up with
// a Session stops waiting and fails with ErrClosed, as does every later
// call. It is safe to call more than once; later calls return the first
// call's error.
func (c *Cluster) Close(ctx context.Context) error {
	if c == nil {
		return invalid.Errorf(ErrInvalid, "nil *Cluster")
	}
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.end()
		<-c.done
		var errs []error
		for _, n := range c.nodes {
			n.closeCheckConn()
			if n.own {
				errs = append(errs, n.pool.Close(ctx))
			}
		}
		c.mu.Lock()
		old := c.snap.Load()
		c.snap.Store(&snapshot{changed: make(chan struct{})})
		close(old.changed)
		c.mu.Unlock()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Primary returns the pool of the node that is the primary now, waiting up
// to Options.PrimaryWait (and ctx) for one during a failover. Advisory
// locks, locks.Queue and anything else that must run on the primary take
// it: advisory.Acquire(ctx, p.Pgx(), ...). The node may stop being the
// primary later; call Primary again rather than keeping the pool.
func (c *Cluster) Primary(ctx context.Context) (*pool.Pool, error) {
	n, err := c.waitPrimary(ctx)
	if err != nil {
		return nil, err
	}
	return n.pool, nil
}

// BeginTx starts a transaction, on a replica within the lag bound (and
// caught up with ctx's Session, as far as the checker knows) when o is
// READ ONLY and not SERIALIZABLE, else on the primary. WithTx does not use it (it calls Route);
// it is for code that manages its transactions itself.
func (c *Cluster) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if o.AccessMode == pgx.ReadOnly && o.IsoLevel == pgx.Serializable && c.opts.Reads == ReplicasOnly {
		return nil, errSerializableRead
	}
	if o.AccessMode == pgx.ReadOnly && o.IsoLevel != pgx.Serializable && c.opts.Reads != PrimaryOnly {
		var need Position
		if s := SessionFrom(ctx); s != nil {
			need = c.settled(s.Position())
		}
		if r := c.pickReplica(time.Now(), need, true, o.IsoLevel == ""); r != nil {
			return r.pool.BeginTx(ctx, o)
		}
		if c.opts.Reads == ReplicasOnly {
			return nil, ErrNoReplica
		}
	}
	p, err := c.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return p.BeginTx(ctx, o)
}

// Exec runs sql on the primary.
func (c *Cluster) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p, err := c.Primary(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.Exec(ctx, sql, args...)
}

// Query runs sql on the primary.
func (c *Cluster) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	p, err := c.Primary(ctx)
	if err != nil {
		return nil, err
	}
	return p.Query(ctx, sql, args...)
}

// QueryRow runs sql on the primary.
func (c *Cluster) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	p, err := c.Primary(ctx)
	if err != nil {
		return errRow{err}
	}
	return p.QueryRow(ctx, sql, args...)
}

// CopyFrom runs COPY FROM on the primary.
func (c *Cluster) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	p, err := c.Primary(ctx)
	if err != nil {
		return 0, err
	}
	return p.CopyFrom(ctx, table, columns, src)
}

// SendBatch sends b to the primary.
func (c *Cluster) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	p, err := c.Primary(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return p.SendBatch(ctx, b)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (c *Cluster) usable() error {
	if c == nil {
		return invalid.Errorf(ErrInvalid, "nil *Cluster")
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Stats counts routing decisions since Open.
type Stats struct {
	// Fallbacks is read-only work sent to the primary because no replica
	// could take it.
	Fallbacks int64
	// SessionWaits is read-only work with a Session that found no replica
	// known to be caught up and waited for one; SessionCaughtUp is how many
	// of those waits ended on the replica.
	SessionWaits, SessionCaughtUp int64
}

// Stats returns the routing counters.
func (c *Cluster) Stats() Stats {
	return Stats{Fallbacks: c.fallbacks.Load(), SessionWaits: c.sessionWaits.Load(), SessionCaughtUp: c.sessionCaughtUp.Load()}
}

// settled is p as a replica must have replayed it (see settled).
func (c *Cluster) settled(p Position) Position { return settled(p, c.walBlock.Load()) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
