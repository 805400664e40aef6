package pool

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connectGate bounds a connection storm. Under pgxpool every acquire that
// finds no idle connection below MaxConns starts a new connection, even
// when another is released a moment later, so a spike of N requests opens
// N server processes. The gate runs at the start of each acquire (in the
// AcquireTracer) and keeps an account of the pool: connections open,
// acquired, claimed by an acquire that is about to take an idle one, and
// being opened. An acquire goes on when an unclaimed idle connection
// exists, when fewer than limit connections are being opened, or when the
// pool is full (pgxpool then hands it the next released connection);
// otherwise it waits for a release or a connect to finish, so a released
// connection goes to a waiter instead of a new one being opened. The wait
// counts against the acquire timeout.
type connectGate struct {
	limit int32 // <= 0: no gate
	max   int32 // the pool's MaxConns

	mu         sync.Mutex
	open       int64 // connections opened and not closed
	held       int64 // acquired and not released
	claimed    int64 // acquires about to take an idle connection
	connecting int64 // acquires that may open a connection
	changed    chan struct{}
}

// claim is what an acquire was let through on.
type claim uint8

const (
	claimNone    claim = iota // the pool is full; pgxpool waits for a release
	claimIdle                 // an idle connection
	claimConnect              // a slot to open a connection
)

// enter waits until the acquire may go on, or ctx ends.
func (g *connectGate) enter(ctx context.Context) claim {
	if g.limit <= 0 {
		return claimNone
	}
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		g.mu.Lock()
		switch {
		case g.open-g.held-g.claimed > 0:
			g.claimed++
			g.mu.Unlock()
			return claimIdle
		case g.open >= int64(g.max):
			g.mu.Unlock()
			return claimNone
		case g.connecting < int64(g.limit):
			g.connecting++
			g.mu.Unlock()
			return claimConnect
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		changed := g.changed
		g.mu.Unlock()
		// Every change of the account wakes the waiters; the poll is a
		// safety net for a connection that leaves the pool unseen.
		if poll == nil {
			poll = time.NewTimer(50 * time.Millisecond)
		} else {
			poll.Reset(50 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			return claimNone
		}
	}
}

// update changes the account under the lock and wakes the waiters.
func (g *connectGate) update(f func()) {
	g.mu.Lock()
	f()
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
	g.mu.Unlock()
}

// exit ends the acquire s; acquired says whether it got a connection.
func (g *connectGate) exit(s *acquireState, acquired bool) {
	if g.limit <= 0 {
		return
	}
	g.update(func() {
		s.exited = true
		switch {
		case acquired && !s.preHeld:
			g.held++
		case !acquired && s.preHeld:
			g.held-- // its new connection went to the idle list
		}
		switch s.claim {
		case claimIdle:
			g.claimed--
		case claimConnect:
			g.connecting--
		}
	})
}

func (g *connectGate) released() {
	if g.limit > 0 {
		g.update(func() { g.held-- })
	}
}

// install counts connections opened and closed through cfg's hooks,
// keeping the hooks already there.
func (g *connectGate) install(cfg *pgxpool.Config) {
	if g.limit <= 0 {
		return
	}
	after, before := cfg.AfterConnect, cfg.BeforeClose
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if after != nil {
			if err := after(ctx, c); err != nil {
				return err
			}
		}
		// pgxpool gives the new connection to the acquire that opened it
		// (its ctx reaches here): count it held at once, so that no
		// waiter takes it for an idle one in the meantime.
		s, _ := ctx.Value(stateKey{}).(*acquireState)
		g.update(func() {
			g.open++
			if s != nil && !s.exited && !s.preHeld {
				s.preHeld = true
				g.held++
			}
		})
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) {
		if before != nil {
			before(c)
		}
		g.update(func() { g.open-- })
	}
}
