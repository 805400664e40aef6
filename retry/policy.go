package retry

import (
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy says how often and how patiently to retry. Every zero field takes
// the value Default has, so a Policy names only what it changes:
//
//	&retry.Policy{MaxAttempts: 3}
//
// Waits grow exponentially from InitialInterval by Multiplier up to
// MaxInterval, each one randomized by ±RandomizationFactor so that clients
// that failed together do not retry together.
type Policy struct {
	// MaxAttempts bounds the attempts, the first one included. Negative
	// means no bound other than MaxElapsedTime and the context.
	MaxAttempts int
	// InitialInterval is the wait after the first failed attempt.
	InitialInterval time.Duration
	// MaxInterval caps a single wait.
	MaxInterval time.Duration
	// MaxElapsedTime bounds the time from the start of the first attempt
	// to the start of the last: no attempt starts after it, and no wait is
	// begun that would end after it (the wait counts, as it does against
	// the context's deadline). Zero means no bound other than MaxAttempts
	// and the context's deadline.
	MaxElapsedTime time.Duration
	// Multiplier grows the wait after each failed attempt. Below 1, NaN
	// or infinite means DefaultMultiplier.
	Multiplier float64
	// RandomizationFactor spreads each wait over [w·(1-f), w·(1+f)].
	// Negative means no jitter; above 1 means 1; NaN or infinite means
	// DefaultRandomizationFactor.
	RandomizationFactor float64
	// RetryLockNotAvailable also retries SQLSTATE 55P03 (lock_not_available:
	// NOWAIT or lock_timeout). Off by default: a caller that asked not to
	// wait for a lock usually wants to hear that it could not have it.
	RetryLockNotAvailable bool
}

// The values Default returns, and that zero fields of a Policy take.
const (
	DefaultMaxAttempts         = 10
	DefaultInitialInterval     = 5 * time.Millisecond
	DefaultMaxInterval         = 500 * time.Millisecond
	DefaultMultiplier          = 2.0
	DefaultRandomizationFactor = 0.5
)

// Default returns the policy used when none is given: at most 10 attempts,
// waits from 5ms doubling to at most 500ms, each randomized by ±50%, no
// bound on elapsed time beyond the context's deadline. The ten attempts
// then span about 1.5s of waiting in all: long enough to ride out a burst
// of contention, short enough to surface a hot spot that needs a design
// change.
func Default() *Policy {
	return &Policy{
		MaxAttempts:         DefaultMaxAttempts,
		InitialInterval:     DefaultInitialInterval,
		MaxInterval:         DefaultMaxInterval,
		Multiplier:          DefaultMultiplier,
		RandomizationFactor: DefaultRandomizationFactor,
	}
}

// maxInterval caps InitialInterval and MaxInterval: a randomized wait can
// be up to twice its interval, and that must still fit a time.Duration
// (about 73 years; no wait is meant to be that long, but none may overflow
// into a negative one).
const maxInterval = time.Duration(math.MaxInt64 / 4)

// Never returns a policy that makes one attempt and never retries. Each
// call returns a new Policy, so no caller can change another's.
func Never() *Policy { return &Policy{MaxAttempts: 1} }

// withDefaults returns p with zero fields filled in; a nil p is Default().
func (p *Policy) withDefaults() Policy {
	if p == nil {
		return *Default()
	}
	q := *p
	if q.MaxAttempts == 0 {
		q.MaxAttempts = DefaultMaxAttempts
	}
	if q.InitialInterval <= 0 {
		q.InitialInterval = DefaultInitialInterval
	}
	if q.MaxInterval <= 0 {
		q.MaxInterval = DefaultMaxInterval
	}
	q.InitialInterval = min(q.InitialInterval, maxInterval)
	q.MaxInterval = min(max(q.MaxInterval, q.InitialInterval), maxInterval)
	if q.Multiplier < 1 || !finite(q.Multiplier) {
		// NaN compares false with everything, so it is caught here, not
		// by the test above, and would make every wait after the first
		// a negative duration.
		q.Multiplier = DefaultMultiplier
	}
	switch {
	case q.RandomizationFactor == 0, !finite(q.RandomizationFactor):
		q.RandomizationFactor = DefaultRandomizationFactor
	case q.RandomizationFactor < 0:
		q.RandomizationFactor = 0
	case q.RandomizationFactor > 1:
		q.RandomizationFactor = 1
	}
	return q
}

// NewBackOff returns the wait schedule of p as a backoff/v4 BackOff. Its
// NextBackOff returns backoff.Stop once MaxElapsedTime has passed; attempt
// counting and the context are the loop's business ([Do]).
func (p *Policy) NewBackOff() backoff.BackOff {
	q := p.withDefaults()
	return q.schedule()
}

// schedule is NewBackOff for a policy withDefaults has filled in. It must
// not fill it in again: that would read "no jitter", which withDefaults
// stores as a factor of 0, as "the default jitter".
func (q Policy) schedule() backoff.BackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(q.InitialInterval),
		backoff.WithMaxInterval(q.MaxInterval),
		backoff.WithMultiplier(q.Multiplier),
		backoff.WithRandomizationFactor(q.RandomizationFactor),
		backoff.WithMaxElapsedTime(q.MaxElapsedTime),
	)
	b.Reset()
	return b
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
