package retry

import (
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
	// MaxElapsedTime stops retrying once this much time has passed since
	// the first attempt began. Zero means no bound other than MaxAttempts
	// and the context's deadline.
	MaxElapsedTime time.Duration
	// Multiplier grows the wait after each failed attempt.
	Multiplier float64
	// RandomizationFactor spreads each wait over [w·(1-f), w·(1+f)].
	// Negative means no jitter.
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

// Never makes one attempt and never retries. Do not modify it.
var Never = &Policy{MaxAttempts: 1}

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
	if q.MaxInterval < q.InitialInterval {
		q.MaxInterval = q.InitialInterval
	}
	if q.Multiplier < 1 {
		q.Multiplier = DefaultMultiplier
	}
	switch {
	case q.RandomizationFactor == 0:
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
