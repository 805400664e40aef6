package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// history is the primary's WAL insert positions, each with the time the
// question was sent: every transaction that committed before that time is
// at or before that position. A replica that has replayed a sample's
// position is stale by at most the time since the sample.
type history struct {
	samples []sample
}

type sample struct {
	at  time.Time
	pos Position
}

const historyLen = 512

func (h *history) add(s sample) {
	if n := len(h.samples); n > 0 && h.samples[n-1].pos > s.pos {
		// The position went back: another server. Start again.
		h.samples = h.samples[:0]
	}
	if len(h.samples) == historyLen {
		copy(h.samples, h.samples[1:])
		h.samples = h.samples[:historyLen-1]
	}
	h.samples = append(h.samples, s)
}

// freshAsOf is the time of the latest sample at or before pos: the replica
// that has replayed pos has every commit made before it. Zero if none.
func (h *history) freshAsOf(pos Position) time.Time {
	for i := len(h.samples) - 1; i >= 0; i-- {
		if h.samples[i].pos <= pos {
			return h.samples[i].at
		}
	}
	return time.Time{}
}

// snapshot is what routing reads: the primary and the healthy replicas,
// built whenever the checker or a failure changes what is known. changed
// is closed when a newer snapshot replaces it.
type snapshot struct {
	primary  *node
	replicas []replicaState
	changed  chan struct{}
}

type replicaState struct {
	n         *node
	freshAsOf time.Time
	lagBytes  int64
}

// checker checks every node each CheckInterval, and at once when kicked.
func (c *Cluster) checker() {
	defer close(c.done)
	t := time.NewTicker(c.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
		case <-c.kickCh:
		}
		c.checkRound()
	}
}

// kick asks the checker for a round now.
func (c *Cluster) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

// checkRound checks every node at once, within CheckTimeout.
func (c *Cluster) checkRound() {
	ctx, cancel := context.WithTimeout(c.life, c.opts.CheckTimeout)
	defer cancel()
	probes := make([]probe, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { probes[i] = n.probe(ctx) })
	}
	wg.Wait()
	c.apply(probes)
}

// apply records a round's findings and publishes the new snapshot.
func (c *Cluster) apply(probes []probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	now := time.Now()
	old := c.snap.Load()
	prev := make(map[*node]bool, len(c.nodes)) // was a former primary
	for _, n := range c.nodes {
		prev[n] = n.st.former
	}
	for i, n := range c.nodes {
		p := probes[i]
		prev := n.st
		n.st.checkedAt = now
		if p.err != nil {
			n.st.healthy = false
			n.st.role = Unknown
			n.st.err = n.describe(p.err)
			if prev.healthy || prev.checkedAt.IsZero() {
				c.opts.Logger.Warn("cluster: node down", "node", n.name, "err", n.st.err)
			}
			continue
		}
		if p.walBlock > 0 {
			c.walBlock.Store(p.walBlock)
		}
		n.st.healthy, n.st.err, n.st.role, n.st.pos = true, "", p.role, p.pos
		n.st.timeline, n.st.former = p.timeline, false
		if p.role == Primary && prev.role != Primary {
			c.seq++
			n.st.promoted = c.seq
		}
		if p.role == Primary {
			c.timeline = max(c.timeline, p.timeline)
		}
		if p.role == Replica {
			n.replay.Store(uint64(p.pos))
		}
		if !prev.healthy || prev.role != p.role {
			c.opts.Logger.Info("cluster: node checked", "node", n.name, "role", p.role.String())
		}
	}
	// Writes must not split between two nodes that both claim to be
	// primary. A promotion starts a later timeline, so a node writing on an
	// earlier timeline than one already seen is a former primary that came
	// back without being rewound: it never takes writes, also while the
	// promoted node is down. Among primaries on the same timeline, the one
	// seen turning primary last wins.
	for _, n := range c.nodes {
		if n.st.healthy && n.st.role == Primary && n.st.timeline < c.timeline {
			n.st.former = true
			n.st.err = fmt.Sprintf("a former primary: writes on timeline %d, behind timeline %d", n.st.timeline, c.timeline)
			if !prev[n] {
				c.opts.Logger.Warn("cluster: node out of routing", "node", n.name, "err", n.st.err)
			}
		}
	}
	primary := c.primaryNow()
	var primaryProbe probe
	if primary != nil {
		primaryProbe = probes[slices.Index(c.nodes, primary)]
	}
	if primary != old.primary && primary != nil {
		c.opts.Logger.Info("cluster: primary", "node", primary.name)
	}
	if primary != nil && c.lastPrimary != nil && primary != c.lastPrimary {
		// A failover. Positions of the old primary's timeline say nothing
		// of the new one's: a replica that had received more of the old
		// primary's WAL than the promoted node is numerically ahead of the
		// new primary's positions while it lacks the new commits. Forget
		// the old samples, and hold every replica back until it is seen
		// streaming and replaying new WAL (following the new primary; one
		// that cannot follow never is).
		c.hist = history{}
		for _, n := range c.nodes {
			if n != primary {
				n.st.held, n.st.heldAt = true, Position(n.replay.Load())
			}
		}
	}
	if primary != nil {
		c.lastPrimary = primary
	}
	if primary != nil {
		c.hist.add(sample{at: primaryProbe.sent, pos: c.settled(primaryProbe.pos)})
	}
	for i, n := range c.nodes {
		if !n.st.healthy || n.st.role != Replica {
			continue
		}
		replayed := Position(n.replay.Load())
		// A replica streaming an earlier timeline than the primary's
		// follows a former primary: its data has diverged from the
		// primary's, however far it has replayed.
		stray := probes[i].receivedTLI != 0 && probes[i].receivedTLI < c.timeline
		if stray && !n.st.held {
			n.st.held, n.st.heldAt = true, replayed
			c.opts.Logger.Warn("cluster: replica follows a former primary", "node", n.name,
				"timeline", probes[i].receivedTLI, "primary_timeline", c.timeline)
		}
		if n.st.held && !stray && probes[i].streaming && replayed > n.st.heldAt {
			n.st.held = false
			c.opts.Logger.Info("cluster: replica follows the new primary", "node", n.name)
		}
		n.st.freshAsOf = c.hist.freshAsOf(replayed)
		if n.st.freshAsOf.IsZero() {
			// No primary position to compare with (no primary known, or a
			// new one not yet sampled): fall back on the commit time of
			// the last transaction replayed. It overstates the lag when
			// the primary is idle, and trusts the hosts' clocks.
			n.st.freshAsOf = probes[i].replayedAt
		}
		n.st.lagBytes = 0
		if at := c.settled(primaryProbe.pos); primary != nil && at > replayed {
			n.st.lagBytes = int64(at - replayed)
		}
	}
	c.publish()
}

// primaryNow is the node that takes writes by the nodes' states: of the
// healthy primaries that are not former ones, the one seen turning primary
// last; nil if none. Under c.mu.
func (c *Cluster) primaryNow() *node {
	var primary *node
	for _, n := range c.nodes {
		if !n.st.healthy || n.st.role != Primary || n.st.former {
			continue
		}
		if primary == nil || n.st.promoted > primary.st.promoted {
			primary = n
		}
	}
	return primary
}

// publish builds the snapshot from the nodes' states. Under c.mu.
func (c *Cluster) publish() {
	s := &snapshot{primary: c.primaryNow(), changed: make(chan struct{})}
	for _, n := range c.nodes {
		if n.st.healthy && n.st.role == Replica && !n.st.held {
			s.replicas = append(s.replicas, replicaState{n: n, freshAsOf: n.st.freshAsOf, lagBytes: n.st.lagBytes})
		}
	}
	old := c.snap.Swap(s)
	close(old.changed)
}

// markDown takes n out of routing until a check finds it healthy, and asks
// for that check now.
func (c *Cluster) markDown(n *node, why string) {
	c.mu.Lock()
	if n.st.healthy && !c.closed.Load() {
		n.st.healthy = false
		n.st.err = why
		c.opts.Logger.Warn("cluster: node out of routing", "node", n.name, "err", why)
		c.publish()
	}
	c.mu.Unlock()
	c.kick()
}

// Nodes returns what the Cluster knows of each node, in the order given to
// Open or New.
func (c *Cluster) Nodes() []NodeStats {
	now := time.Now()
	s := c.snap.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeStats, 0, len(c.nodes))
	for _, n := range c.nodes {
		ns := NodeStats{
			Name: n.name, Role: n.st.role, Healthy: n.st.healthy, Err: n.st.err,
			Position: n.st.pos, CheckedAt: n.st.checkedAt,
			Reads: n.reads.Load(), Writes: n.writes.Load(),
			SerializableDefault: n.serializableDefault.Load(),
		}
		if n.st.role == Replica {
			ns.AwaitingPrimary = n.st.held
			ns.Position = Position(n.replay.Load())
			ns.LagBytes = n.st.lagBytes
			ns.Lag = c.lagNow(n.st.freshAsOf, now)
			ns.Routable = n.st.healthy && !n.st.held && c.withinBound(replicaState{n: n, freshAsOf: n.st.freshAsOf, lagBytes: n.st.lagBytes}, now)
		} else {
			ns.Routable = s.primary == n
		}
		out = append(out, ns)
	}
	return out
}

// lagNow is the staleness bound of a replica fresh as of t: unknown (the
// longest duration) if t is zero.
func (c *Cluster) lagNow(t, now time.Time) time.Duration {
	if t.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return max(0, now.Sub(t))
}

func (c *Cluster) withinBound(r replicaState, now time.Time) bool {
	if c.lagNow(r.freshAsOf, now) > c.opts.MaxLag {
		return false
	}
	return c.opts.MaxLagBytes <= 0 || r.lagBytes <= c.opts.MaxLagBytes
}
