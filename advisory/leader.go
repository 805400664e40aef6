package advisory

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/retry"
)

// Lead runs fn whenever this process is the leader for name, until ctx
// ends. It campaigns by waiting for the session lock called name (one
// pool connection waits in the server's lock queue: no polling, and the
// next leader takes over the moment the old leader's session ends), then
// runs fn with a ctx that is cancelled, with a cause matching
// [ErrLockLost], if the lock is lost. After a loss it campaigns again.
//
// term is the leadership's fencing token ([Fence] is always on for Lead):
// every new leadership of name has a larger term than all before it,
// across processes and restarts. The old leader learns of a loss only
// within a [CheckInterval], so for a short while it may still act after a
// new leader has started: guard the leader's writes with the term (see
// "Fencing" in the package documentation) so that the database refuses the
// stale ones.
//
// fn should run until its ctx ends. Lead returns nil when ctx ends, and
// returns when fn returns for any other reason than a lost lock: nil if fn
// returned nil, or fn's error. Failures to campaign (the server is
// unreachable, say) are retried with backoff; errors that retrying cannot
// cure, such as [ErrPooler], [ErrUnsupportedServer], invalid options, or a
// fence table the role may not create, are returned.
func Lead(ctx context.Context, pool *pgxpool.Pool, name string, fn func(ctx context.Context, term int64) error, opts ...Option) error {
	if pool == nil {
		return ErrNilPool
	}
	if fn == nil {
		return ErrNilFunc
	}
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	if o.shared {
		return &optionsError{problems: []string{"Lead needs an exclusive lock (Shared was given): shared holders would all lead"}}
	}
	opts = append(opts[:len(opts):len(opts)], Fence())
	if _, err := makeKey(o.namespace, name); err != nil {
		return err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	for {
		l, err := Acquire(ctx, pool, name, opts...)
		switch {
		case ctx.Err() != nil:
			if l != nil {
				_ = l.Release(ctx)
			}
			return nil
		case err == nil:
		case errors.Is(err, ErrNotAcquired):
			// Only a Timeout option ends a campaign this way: campaign on.
			continue
		case permanent(err):
			return err
		default:
			if !sleep(ctx, b.NextBackOff()) {
				return nil
			}
			continue
		}
		b.Reset()
		lost, err := lead(ctx, l, o.observer, fn)
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
	if obs != nil {
		obs.LeaderStart(ctx, LeaderStartData{Name: l.Name(), Term: term})
	}
	var fnErr error
	lost, err = l.run(ctx, func(ctx context.Context) error {
		fnErr = fn(ctx, term)
		return fnErr
	})
	if obs != nil {
		obs.LeaderEnd(ctx, LeaderEndData{Name: l.Name(), Term: term, Held: time.Since(start), Lost: lost, Err: fnErr})
	}
	return lost, err
}

// permanent reports whether a failed campaign would fail the same way
// again.
func permanent(err error) bool {
	if errors.Is(err, ErrPooler) || errors.Is(err, ErrUnsupportedServer) ||
		errors.Is(err, ErrInvalidOptions) || errors.Is(err, ErrInvalidName) || errors.Is(err, ErrNilPool) {
		return true
	}
	// Class 42, syntax error or access rule violation: the fence table
	// cannot be created or used by this role.
	state := retry.SQLState(err)
	return len(state) == 5 && state[:2] == "42"
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
