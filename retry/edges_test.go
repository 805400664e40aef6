package retry_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
)

// clock is a fake clock for the retry loop: it moves only when the test
// says so.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// The wait about to be slept counts against MaxElapsedTime: a first
// attempt of 90ms and a wait of 60ms would start the second attempt at
// 150ms, past a 100ms budget, so the loop stops after the first. Not
// parallel: it replaces the loop's clock.
func TestMaxElapsedTimeCountsTheNextWait(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	defer retry.SetNow(c.now)()
	policy := func(budget time.Duration) *retry.Policy {
		return &retry.Policy{MaxAttempts: -1, MaxElapsedTime: budget,
			InitialInterval: 60 * time.Millisecond, MaxInterval: 60 * time.Millisecond, RandomizationFactor: -1}
	}
	run := func(budget time.Duration) (attempts int, waits []time.Duration, err error) {
		err = retry.DoWith(context.Background(), policy(budget), retry.Hooks{OnRetry: func(i retry.RetryData) { waits = append(waits, i.Wait) }},
			func(context.Context, int) error {
				attempts++
				c.t = c.t.Add(90 * time.Millisecond) // each attempt takes 90ms
				return pgErr(pgerrcode.SerializationFailure)
			})
		return attempts, waits, err
	}

	attempts, waits, err := run(100 * time.Millisecond)
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 1, attempts, "a second attempt would start at 150ms, past the 100ms budget")
	require.Empty(t, waits)
	var ex *retry.ExhaustedError
	require.ErrorAs(t, err, &ex)
	require.Equal(t, 90*time.Millisecond, ex.Elapsed)

	// With room for the wait, the second attempt is made (at 150ms); a
	// third would start at 300ms, past 200ms.
	attempts, waits, err = run(200 * time.Millisecond)
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 2, attempts)
	require.Equal(t, []time.Duration{60 * time.Millisecond}, waits)
}

// Non-finite Multiplier or RandomizationFactor, and intervals near
// MaxInt64, never give a negative wait.
func TestScheduleNeverGoesNegative(t *testing.T) {
	t.Parallel()
	huge := time.Duration(math.MaxInt64)
	odd := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	var policies []*retry.Policy
	for _, f := range odd {
		policies = append(policies,
			&retry.Policy{Multiplier: f},
			&retry.Policy{RandomizationFactor: f},
			&retry.Policy{Multiplier: f, RandomizationFactor: f, InitialInterval: huge, MaxInterval: huge},
		)
	}
	for _, f := range []float64{0, -1, 0.5, 1, 2, 1e300} {
		policies = append(policies,
			&retry.Policy{InitialInterval: huge, RandomizationFactor: f},
			&retry.Policy{InitialInterval: huge - 1, MaxInterval: huge, Multiplier: f},
			&retry.Policy{InitialInterval: time.Second, MaxInterval: huge, Multiplier: 1e300, RandomizationFactor: f},
			&retry.Policy{InitialInterval: huge / 2, MaxInterval: huge / 2, MaxElapsedTime: huge, RandomizationFactor: f},
		)
	}
	for _, p := range policies {
		for range 20 {
			b := p.NewBackOff()
			for i := range 70 {
				w := b.NextBackOff()
				require.GreaterOrEqual(t, w, time.Duration(0), "policy %+v, wait %d", *p, i)
			}
		}
	}
}

// The defaults stand in for non-finite values: the schedule is Default's.
func TestNonFiniteFactorsTakeTheDefaults(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		b := (&retry.Policy{Multiplier: f, RandomizationFactor: -1}).NewBackOff()
		require.Equal(t, retry.DefaultInitialInterval, b.NextBackOff())
		require.Equal(t, 2*retry.DefaultInitialInterval, b.NextBackOff(), "Multiplier %v means DefaultMultiplier", f)

		b = (&retry.Policy{RandomizationFactor: f, InitialInterval: time.Second, MaxInterval: time.Second}).NewBackOff()
		for range 50 {
			w := b.NextBackOff()
			require.GreaterOrEqual(t, w, time.Duration(float64(time.Second)*(1-retry.DefaultRandomizationFactor)))
			require.LessOrEqual(t, w, time.Duration(float64(time.Second)*(1+retry.DefaultRandomizationFactor))+1)
		}
	}
}

// OnRetry never hears of a negative wait, and the loop does back off: with
// a NaN multiplier, the waits after the first stayed positive.
func TestOnRetryNeverReportsANegativeWait(t *testing.T) {
	t.Parallel()
	for _, p := range []*retry.Policy{
		{MaxAttempts: 6, InitialInterval: time.Microsecond, MaxInterval: time.Millisecond, Multiplier: math.NaN()},
		{MaxAttempts: 6, InitialInterval: time.Microsecond, MaxInterval: time.Millisecond, RandomizationFactor: math.NaN()},
		{MaxAttempts: 6, InitialInterval: time.Microsecond, MaxInterval: time.Millisecond, Multiplier: math.Inf(1), RandomizationFactor: math.Inf(-1)},
	} {
		var waits []time.Duration
		err := retry.DoWith(context.Background(), p, retry.Hooks{OnRetry: func(i retry.RetryData) { waits = append(waits, i.Wait) }},
			func(context.Context, int) error { return pgErr(pgerrcode.SerializationFailure) })
		require.ErrorIs(t, err, retry.ErrExhausted)
		require.Len(t, waits, 5)
		for i, w := range waits {
			require.Positive(t, w, "wait %d of policy %+v", i, *p)
		}
	}
}

// A wait near MaxInt64 is a very long wait, not a negative one: the loop
// gives up against the ctx deadline instead of retrying at once.
func TestHugeIntervalsDoNotRetryAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	huge := time.Duration(math.MaxInt64)
	attempts := 0
	err := retry.Do(ctx, &retry.Policy{InitialInterval: huge, MaxInterval: huge}, func(context.Context) error {
		attempts++
		return pgErr(pgerrcode.SerializationFailure)
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 1, attempts)
	require.Contains(t, err.Error(), "deadline")
}

func TestNilFnIsAnError(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, retry.Do(context.Background(), nil, nil), retry.ErrInvalid)
	require.ErrorIs(t, retry.DoWith(context.Background(), nil, retry.Hooks{}, nil), retry.ErrInvalid)
}

// Never hands each caller a policy of its own: changing one changes no
// other caller's.
func TestNeverCannotBeChangedForOthers(t *testing.T) {
	t.Parallel()
	p := retry.Never()
	p.MaxAttempts = 5
	require.Equal(t, 1, retry.Never().MaxAttempts)
	a, b := retry.Never(), retry.Never()
	require.NotSame(t, a, b)
}

// When ctx ends an attempt after earlier ones failed retryably (the
// attempt's own error is ctx's, as pgx reports it), the loop stops as it
// does between attempts: its error matches ctx's cause and still reaches
// the last retryable error.
func TestContextEndingAnAttemptKeepsTheLastRetryableError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p := retry.Default()
	p.InitialInterval, p.MaxInterval = time.Millisecond, time.Millisecond
	attempts := 0
	err := retry.DoWith(ctx, p, retry.Hooks{}, func(ctx context.Context, attempt int) error {
		attempts = attempt
		if attempt == 1 {
			return &pgconn.PgError{Code: "40001"}
		}
		<-ctx.Done()
		return fmt.Errorf("timeout: %w", ctx.Err())
	})
	require.Equal(t, 2, attempts)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "40001", retry.SQLState(err), "%v", err)

	// An error of fn's own at that moment is returned as it is.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	own := errors.New("own")
	err = retry.DoWith(ctx2, p, retry.Hooks{}, func(ctx context.Context, attempt int) error {
		if attempt == 1 {
			return &pgconn.PgError{Code: "40001"}
		}
		<-ctx.Done()
		return own
	})
	require.Same(t, own, err)
}
