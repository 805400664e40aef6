package advisory

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/internal/purpose"
	"github.com/txkit/txkit/internal/wait"
	"github.com/txkit/txkit/retry"
)

// campaignBackoff spaces the campaigns after a failure that may pass: from
// 100ms growing by half each time to at most 5s, each wait randomized by
// ±50%, for as long as ctx lasts.
var campaignBackoff = retry.Policy{
	MaxAttempts:         -1,
	InitialInterval:     100 * time.Millisecond,
	MaxInterval:         5 * time.Second,
	Multiplier:          1.5,
	RandomizationFactor: 0.5,
}

// Lead runs fn whenever this process is the leader for name, until ctx
// ends. It campaigns by waiting for the session lock called name (one
// pool connection waits in the server's lock queue: no polling, and the
// next leader takes over the moment the old leader's session ends), then
// runs fn with a ctx that is cancelled, with a cause matching
// [ErrLockLost], if the lock is lost. After a loss it campaigns again.
//
// term is the leadership's fencing token ([Options.Fence] is always on for Lead):
// every new leadership of name has a larger term than all before it,
// across processes and restarts. The old leader learns of a loss only
// within an [Options.CheckInterval], so for a short while it may still act after a
// new leader has started: guard the leader's writes with the term (see
// "Fencing" in the package documentation) so that the database refuses the
// stale ones.
//
// fn should run until its ctx ends. Lead returns nil when ctx ends, and
// returns when fn returns for any other reason than a lost lock: nil if fn
// returned nil, or fn's error. Failures to campaign that may pass (the
// server is unreachable or restarting, the connection broke, the server is
// out of connections or resources, a serialization failure or deadlock)
// are retried with backoff. Everything else is returned: [ErrPooler],
// [ErrUnsupportedServer], invalid options or names, and any other error
// the server answered with, such as a fence table the role may not create
// or a setting the server refuses, since the next campaign would be
// answered the same.
func Lead(ctx context.Context, pool *pgxpool.Pool, name string, opts Options, fn func(ctx context.Context, term int64) error) error {
	if pool == nil {
		return errNil("pool")
	}
	if fn == nil {
		return errNil("fn")
	}
	if opts.Shared {
		return invalid.Errorf(ErrInvalid, "Lead needs an exclusive lock (Shared was given): shared holders would all lead")
	}
	opts.Fence = true
	if _, err := newRequest(name, opts, SessionLock, false); err != nil {
		return err
	}
	// The campaign's connection is held on purpose, for as long as this
	// process leads; fn's own work is not marked.
	campaign := purpose.Mark(ctx, "advisory leader "+ident.Show(name))
	b := campaignBackoff.NewBackOff()
	for {
		l, err := Acquire(campaign, pool, name, opts)
		switch {
		case ctx.Err() != nil:
			if l != nil {
				_ = l.Release(ctx)
			}
			return nil
		case err == nil:
		case errors.Is(err, ErrNotAcquired):
			// Only Options.LockTimeout ends a campaign this way: campaign on.
			continue
		case permanent(err):
			return err
		default:
			if !wait.Sleep(ctx, b.NextBackOff()) {
				return nil
			}
			continue
		}
		b.Reset()
		lost, err := lead(ctx, l, opts.Observer, fn)
		switch {
		case ctx.Err() != nil:
			return nil //nolint:nilerr // the end of ctx is Lead's normal stop, whatever fn returned then
		case lost:
			continue
		}
		return err
	}
}

// lead runs fn for one leadership.
func lead(ctx context.Context, l *Lock, obs Observer, fn func(ctx context.Context, term int64) error) (lost bool, err error) {
	term := l.Token()
	start := time.Now()
	if o, ok := obs.(LeaderStartObserver); ok {
		o.LeaderStart(ctx, LeaderStartData{Name: l.Name(), Term: term})
	}
	var fnErr error
	lost, err = l.run(ctx, func(ctx context.Context) error {
		fnErr = fn(ctx, term)
		return fnErr
	})
	if o, ok := obs.(LeaderEndObserver); ok {
		o.LeaderEnd(ctx, LeaderEndData{Name: l.Name(), Term: term, Held: time.Since(start), Lost: lost, Err: fnErr})
	}
	return lost, err
}

// permanent reports whether a failed campaign would fail the same way
// again. An error the server answered with is permanent unless its
// SQLSTATE says the condition passes: retrying anything else would loop
// for as long as ctx lasts and hide the error. Errors without a SQLSTATE
// (a network failure, no pool connection in time) are transient.
func permanent(err error) bool {
	if errors.Is(err, ErrPooler) || errors.Is(err, ErrUnsupportedServer) || errors.Is(err, ErrInvalid) {
		return true
	}
	state := retry.SQLState(err)
	return state != "" && !transientState(state)
}

// transientState reports whether a SQLSTATE names a condition that can
// pass without anyone changing the schema, the role or the settings.
func transientState(state string) bool {
	switch state {
	case pgerrcode.LockNotAvailable, // another session's lock_timeout-bounded work
		pgerrcode.ObjectInUse,
		pgerrcode.ReadOnlySQLTransaction: // a failover in progress: a standby answered
		return true
	}
	if len(state) != 5 {
		return false
	}
	switch state[:2] {
	case "08", // connection exception
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources: too many connections, out of memory or disk
		"57", // operator intervention: shutdown, restart, cancelled statement
		"58": // system error: I/O
		return true
	}
	return false
}
