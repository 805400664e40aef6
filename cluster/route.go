package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// Route gives WithTx the connection for one attempt (see txn.Router):
// on a replica for read-only work when one may take it, else on the
// primary. The node is chosen from what the checker last found: routing
// sends nothing to the server, except while read-only work with a Session
// waits for a replica to catch up.
func (c *Cluster) Route(ctx context.Context, req txn.RouteRequest) (*txn.Routed, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if req.ReadOnly && c.opts.Reads != PrimaryOnly {
		if req.Isolation == isolation.Serializable {
			return c.routeSerializableRead(ctx)
		}
		return c.routeRead(ctx, req.Isolation == isolation.Default)
	}
	n, conn, err := c.acquirePrimary(ctx)
	if err != nil {
		return nil, err
	}
	// A READ ONLY transaction stays one on the primary (PrimaryOnly): it
	// records no commit position, and a write in it refused with 25006 is
	// the caller's error, not a sign that the primary became a standby.
	return c.routed(ctx, n, conn, req.ReadOnly), nil
}

// errSerializableRead is ErrNoReplica for a SERIALIZABLE read under
// ReplicasOnly.
var errSerializableRead = fmt.Errorf("%w: a hot standby cannot run a SERIALIZABLE transaction (a read on a replica takes RepeatableRead)", ErrNoReplica)

// routeSerializableRead sends a SERIALIZABLE READ ONLY transaction to the
// primary: a hot standby refuses SERIALIZABLE (0A000). Under ReplicasOnly
// it fails with ErrNoReplica instead.
func (c *Cluster) routeSerializableRead(ctx context.Context) (*txn.Routed, error) {
	return c.readOnPrimary(ctx, errSerializableRead)
}

// readOnPrimary sends a read no replica may take to the primary, counted
// as a fallback; under ReplicasOnly it fails with refused instead.
func (c *Cluster) readOnPrimary(ctx context.Context, refused error) (*txn.Routed, error) {
	if c.opts.Reads == ReplicasOnly {
		return nil, refused
	}
	n, conn, err := c.acquirePrimary(ctx)
	if err != nil {
		return nil, err
	}
	c.fallbacks.Add(1)
	return c.routed(ctx, n, conn, true), nil
}

// acquirePrimary takes a connection to the primary, waiting for one to be
// known. A connection that cannot be made takes the node out of routing
// and is returned marked for another attempt, which waits for the checker.
func (c *Cluster) acquirePrimary(ctx context.Context) (*node, *pgxpool.Conn, error) {
	n, err := c.waitPrimary(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn, err := n.pool.Acquire(ctx)
	if err != nil {
		if c.closed.Load() {
			// Close closed the pool after the check in Route.
			return nil, nil, ErrClosed
		}
		if c.acquireFailed(ctx, n, err) {
			err = txn.RouteAgain(err)
		}
		return nil, nil, err
	}
	return n, conn, nil
}

// acquireFailed classifies a failure to get a connection to n: the pool
// being full or ctx ending is not the node's fault; anything else is the
// node failing, which takes it out of routing (down is true).
func (c *Cluster) acquireFailed(ctx context.Context, n *node, err error) (down bool) {
	if ctx.Err() != nil || errors.Is(err, pool.ErrPoolTimeout) || errors.Is(err, pool.ErrClosed) {
		return false
	}
	c.markDown(n, n.describe(err))
	return true
}

// waitPrimary returns the primary, waiting up to PrimaryWait for the
// checker to find one.
func (c *Cluster) waitPrimary(ctx context.Context) (*node, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	for {
		s := c.snap.Load()
		if s.primary != nil {
			return s.primary, nil
		}
		if c.closed.Load() {
			return nil, ErrClosed
		}
		if timeout == nil {
			t := time.NewTimer(c.opts.PrimaryWait)
			defer t.Stop()
			timeout = t.C
		}
		c.kick()
		select {
		case <-s.changed:
		case <-timeout:
			return nil, ErrNoPrimary
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// routeRead chooses a replica for read-only work: within the lag bound,
// and for a Session, one that has replayed the Session's position, waiting
// up to SessionWait for one to; else the primary, or ErrNoReplica.
func (c *Cluster) routeRead(ctx context.Context, byDefault bool) (*txn.Routed, error) {
	var need Position
	if s := SessionFrom(ctx); s != nil {
		need = c.settled(s.Position())
	}
	now := time.Now()
	for tries := 0; tries < len(c.nodes); tries++ {
		r := c.pickReplica(now, need, true, byDefault)
		if r == nil {
			break
		}
		conn, err := r.pool.Acquire(ctx)
		if err != nil {
			if c.closed.Load() {
				return nil, ErrClosed
			}
			if !c.acquireFailed(ctx, r, err) {
				return nil, err
			}
			continue
		}
		return c.routed(ctx, r, conn, true), nil
	}
	if need != 0 && need < UnknownPosition {
		if r := c.pickReplica(now, need, false, byDefault); r != nil {
			if conn := c.waitReplay(ctx, r, need); conn != nil {
				return c.routed(ctx, r, conn, true), nil
			}
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if c.closed.Load() {
				return nil, ErrClosed
			}
		}
	}
	return c.readOnPrimary(ctx, ErrNoReplica)
}

// pickReplica returns a replica within the lag bound: with caughtUp, one
// known to have replayed need, spreading reads over those that qualify;
// without, the one furthest ahead. nil if none. byDefault (the read takes
// the server's default isolation) leaves out replicas whose sessions
// default to SERIALIZABLE, which a hot standby refuses.
func (c *Cluster) pickReplica(now time.Time, need Position, caughtUp, byDefault bool) *node {
	s := c.snap.Load()
	var ok []*node
	var best *node
	for _, r := range s.replicas {
		if !c.withinBound(r, now) || (byDefault && r.n.serializableDefault.Load()) {
			continue
		}
		replayed := Position(r.n.replay.Load())
		if caughtUp && replayed < need {
			continue
		}
		ok = append(ok, r.n)
		if best == nil || replayed > Position(best.replay.Load()) {
			best = r.n
		}
	}
	if len(ok) == 0 {
		return nil
	}
	if !caughtUp {
		return best
	}
	return ok[c.rr.Add(1)%uint64(len(ok))]
}

// replayPollInterval is how often a Session's read asks a replica how far
// it has replayed while waiting for it.
const replayPollInterval = 2 * time.Millisecond

// waitReplay takes a connection to replica r and asks it how far it has
// replayed until it reaches need or SessionWait passes. It returns the
// connection if r caught up, nil otherwise.
func (c *Cluster) waitReplay(ctx context.Context, r *node, need Position) *pgxpool.Conn {
	c.sessionWaits.Add(1)
	deadline := time.Now().Add(c.opts.SessionWait)
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		c.acquireFailed(ctx, r, err)
		return nil
	}
	for {
		var lsn *string
		if err := conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&lsn); err != nil || lsn == nil {
			conn.Release()
			return nil
		}
		pos, err := ParsePosition(*lsn)
		if err != nil {
			conn.Release()
			return nil
		}
		raise(&r.replay, pos)
		if pos >= need {
			c.sessionCaughtUp.Add(1)
			return conn
		}
		if time.Now().Add(replayPollInterval).After(deadline) {
			conn.Release()
			return nil
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil
		case <-c.life.Done():
			// Close: give the connection back so that the pool can close.
			conn.Release()
			return nil
		case <-time.After(replayPollInterval):
		}
	}
}

// routed is the answer for an attempt on n. Done counts the commit, moves
// ctx's Session to a write's commit position, and reacts to failures: a
// write refused because the node is a standby (25006) takes it out of
// routing and runs the transaction again on the primary the checker finds;
// a broken connection asks for a check now.
func (c *Cluster) routed(ctx context.Context, n *node, conn *pgxpool.Conn, read bool) *txn.Routed {
	sess := SessionFrom(ctx)
	var mark uint64
	wasUnknown := false
	if sess != nil && !read {
		mark, wasUnknown = sess.mark()
	}
	return &txn.Routed{
		Conn:           conn,
		CommitPosition: !read && sess != nil,
		Done: func(e txn.AttemptEnd) bool {
			if e.Committed {
				if read {
					n.reads.Add(1)
				} else {
					n.writes.Add(1)
					if sess != nil {
						sess.observeAfter(c.commitPosition(ctx, n, Position(e.Position)), mark, wasUnknown)
					}
				}
				return false
			}
			if e.Err == nil {
				return false
			}
			if retry.SQLState(e.Err) == pgerrcode.ReadOnlySQLTransaction && !read && c.isStandby(ctx, conn) {
				c.markDown(n, "refused a write as a standby (25006)")
				return true
			}
			if conn.Conn().IsClosed() {
				c.kick()
			}
			return false
		},
	}
}

// isStandby asks, on the connection that got 25006, whether its server is
// in recovery. 25006 also answers a write in a transaction that fn made
// READ ONLY itself (SET TRANSACTION READ ONLY) or that a server's
// default_transaction_read_only made so: on a primary that is fn's
// error, returned as it is, and the primary stays in routing. When the
// question gets no answer, nothing shows that the node is a standby: the
// error is returned as it is, and a connection that broke asks for a
// check (see routed).
func (c *Cluster) isStandby(ctx context.Context, conn *pgxpool.Conn) bool {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.CheckTimeout)
	defer cancel()
	var rec bool
	if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		return false
	}
	return rec
}

// commitPosition is a write's commit position for a Session: the one read
// in COMMIT's write, else (its answer was lost, and the commit was settled
// by asking the server) the primary's insert position now, which is past
// the commit; else, when even that cannot be read, a position no replica
// reaches, so that the Session's reads go to the primary rather than miss
// the write.
func (c *Cluster) commitPosition(ctx context.Context, n *node, p Position) Position {
	if p != 0 {
		return p
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.CheckTimeout)
	defer cancel()
	var lsn string
	if err := n.pool.QueryRow(qctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err == nil {
		if pos, err := ParsePosition(lsn); err == nil && pos != 0 {
			return pos
		}
	}
	return UnknownPosition
}

// raise sets a to p if p is later than a's value.
func raise(a *atomic.Uint64, p Position) {
	for {
		cur := a.Load()
		if uint64(p) <= cur || a.CompareAndSwap(cur, uint64(p)) {
			return
		}
	}
}
