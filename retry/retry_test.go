package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
)

func pgErr(code string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "test error " + code}
}

func TestRetryableBySQLState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", pgErr(pgerrcode.SerializationFailure), true},
		{"deadlock", pgErr(pgerrcode.DeadlockDetected), true},
		{"wrapped with %w", fmt.Errorf("transfer: %w", pgErr(pgerrcode.SerializationFailure)), true},
		{"joined", errors.Join(errors.New("other"), pgErr(pgerrcode.DeadlockDetected)), true},
		{"lock not available is not retried by default", pgErr(pgerrcode.LockNotAvailable), false},
		{"unique violation", pgErr(pgerrcode.UniqueViolation), false},
		{"wrapped with %v loses the code", fmt.Errorf("transfer: %v", pgErr(pgerrcode.SerializationFailure)), false},
		{"message text is never read", errors.New("could not serialize access due to concurrent update"), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, retry.Retryable(c.err))
			require.Equal(t, c.want, retry.Default().Retryable(c.err))
		})
	}
}

func TestPolicyOptsIntoLockNotAvailable(t *testing.T) {
	t.Parallel()
	p := &retry.Policy{RetryLockNotAvailable: true}
	require.True(t, p.Retryable(pgErr(pgerrcode.LockNotAvailable)))
	require.True(t, p.Retryable(pgErr(pgerrcode.SerializationFailure)))
	require.False(t, retry.Retryable(pgErr(pgerrcode.LockNotAvailable)))
}

func TestSQLState(t *testing.T) {
	t.Parallel()
	require.Equal(t, "40001", retry.SQLState(fmt.Errorf("a: %w", pgErr("40001"))))
	require.Empty(t, retry.SQLState(errors.New("plain")))
}

func TestScheduleWithoutJitterDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	p := &retry.Policy{
		InitialInterval:     10 * time.Millisecond,
		MaxInterval:         80 * time.Millisecond,
		Multiplier:          2,
		RandomizationFactor: -1, // no jitter
	}
	b := p.NewBackOff()
	var got []time.Duration
	for range 6 {
		got = append(got, b.NextBackOff())
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms}, got)
}

func TestScheduleJitterStaysInBounds(t *testing.T) {
	t.Parallel()
	p := retry.Default()
	seen := map[time.Duration]bool{}
	for range 200 {
		b := p.NewBackOff()
		base := float64(retry.DefaultInitialInterval)
		for i := range 8 {
			w := b.NextBackOff()
			interval := min(base, float64(retry.DefaultMaxInterval))
			lo := time.Duration(interval * (1 - retry.DefaultRandomizationFactor))
			hi := time.Duration(interval * (1 + retry.DefaultRandomizationFactor))
			require.GreaterOrEqual(t, w, lo, "wait %d", i)
			require.LessOrEqual(t, w, hi, "wait %d", i)
			base *= retry.DefaultMultiplier
			if i == 0 {
				seen[w] = true
			}
		}
	}
	require.Greater(t, len(seen), 10, "waits should be spread, not identical")
}

func TestScheduleStopsAfterMaxElapsedTime(t *testing.T) {
	t.Parallel()
	p := &retry.Policy{MaxElapsedTime: time.Nanosecond}
	b := p.NewBackOff()
	time.Sleep(time.Millisecond)
	require.Equal(t, backoff.Stop, b.NextBackOff())
}

func TestZeroPolicyFieldsTakeDefaults(t *testing.T) {
	t.Parallel()
	attempts := 0
	err := retry.Do(context.Background(), &retry.Policy{InitialInterval: time.Microsecond, MaxInterval: time.Microsecond}, func(context.Context) error {
		attempts++
		return pgErr(pgerrcode.SerializationFailure)
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, retry.DefaultMaxAttempts, attempts)
}

func fast(maxAttempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: maxAttempts, InitialInterval: time.Microsecond, MaxInterval: time.Microsecond}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	attempts := 0
	var infos []retry.RetryData
	err := retry.DoWith(context.Background(), fast(5), retry.Hooks{OnRetry: func(i retry.RetryData) { infos = append(infos, i) }},
		func(_ context.Context, attempt int) error {
			attempts++
			require.Equal(t, attempts, attempt)
			if attempt < 3 {
				return pgErr(pgerrcode.DeadlockDetected)
			}
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	require.Len(t, infos, 2)
	require.Equal(t, 1, infos[0].Attempt)
	require.Equal(t, pgerrcode.DeadlockDetected, infos[1].SQLState)
}

func TestDoReturnsNonRetryableErrorsUnchanged(t *testing.T) {
	t.Parallel()
	want := errors.New("boom")
	attempts := 0
	err := retry.Do(context.Background(), fast(5), func(context.Context) error {
		attempts++
		return want
	})
	require.Same(t, want, err)
	require.Equal(t, 1, attempts)
}

func TestExhaustionKeepsTheLastPgError(t *testing.T) {
	t.Parallel()
	attempts := 0
	err := retry.Do(context.Background(), fast(4), func(context.Context) error {
		attempts++
		return fmt.Errorf("attempt %d: %w", attempts, pgErr(pgerrcode.SerializationFailure))
	})
	require.Equal(t, 4, attempts)
	require.ErrorIs(t, err, retry.ErrExhausted)
	var pe *pgconn.PgError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, pgerrcode.SerializationFailure, pe.Code)
	require.Contains(t, err.Error(), "attempt 4")
	var ex *retry.ExhaustedError
	require.ErrorAs(t, err, &ex)
	require.Equal(t, 4, ex.Attempts)
}

func TestNeverMakesOneAttempt(t *testing.T) {
	t.Parallel()
	attempts := 0
	err := retry.Do(context.Background(), retry.Never(), func(context.Context) error {
		attempts++
		return pgErr(pgerrcode.SerializationFailure)
	})
	require.Equal(t, 1, attempts)
	require.ErrorIs(t, err, retry.ErrExhausted)
}

func TestDoNeverWaitsPastTheDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &retry.Policy{InitialInterval: time.Hour, MaxInterval: time.Hour, RandomizationFactor: -1}
	attempts := 0
	err := retry.Do(ctx, p, func(context.Context) error {
		attempts++
		return pgErr(pgerrcode.SerializationFailure)
	})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 1, attempts)
	require.NoError(t, ctx.Err(), "Do must give up before the deadline, not sleep into it")
	require.Contains(t, err.Error(), "deadline")
}

func TestDoStopsAtOnceOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	p := &retry.Policy{InitialInterval: time.Hour, MaxInterval: time.Hour}
	attempts := 0
	done := make(chan error, 1)
	failed := make(chan struct{})
	go func() {
		done <- retry.Do(ctx, p, func(context.Context) error {
			attempts++
			close(failed)
			return pgErr(pgerrcode.SerializationFailure)
		})
	}()
	<-failed
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Do kept sleeping after its context was cancelled")
	}
	require.ErrorIs(t, err, context.Canceled)
	var pe *pgconn.PgError
	require.ErrorAs(t, err, &pe, "the last attempt's error stays reachable")
	require.Equal(t, 1, attempts)
}

func TestDoWithCancelledContextMakesNoAttempt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := retry.Do(ctx, fast(3), func(context.Context) error {
		t.Fatal("fn must not run")
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
}

func TestCustomClassifier(t *testing.T) {
	t.Parallel()
	attempts := 0
	errTransient := errors.New("transient")
	err := retry.DoWith(context.Background(), fast(3), retry.Hooks{Retryable: func(err error) bool { return errors.Is(err, errTransient) }},
		func(context.Context, int) error {
			attempts++
			return errTransient
		})
	require.Equal(t, 3, attempts)
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.ErrorIs(t, err, errTransient)
}

func TestMaxElapsedTimeCountsFromTheFirstAttempt(t *testing.T) {
	t.Parallel()
	attempts := 0
	err := retry.Do(context.Background(), &retry.Policy{MaxAttempts: -1, MaxElapsedTime: 20 * time.Millisecond, InitialInterval: time.Millisecond},
		func(context.Context) error {
			attempts++
			if attempts == 1 {
				time.Sleep(30 * time.Millisecond) // the first attempt alone uses up the budget
			}
			return pgErr(pgerrcode.SerializationFailure)
		})
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 1, attempts)
}

// TestNilPolicyIsDefault: a nil Policy is retry.Default(): as many attempts
// as DefaultMaxAttempts, with its waits. (The waits are real: about 1.5 s.)
func TestNilPolicyIsDefault(t *testing.T) {
	t.Parallel()
	t.Run("Do", func(t *testing.T) {
		t.Parallel()
		attempts := 0
		err := retry.Do(context.Background(), nil, func(context.Context) error {
			attempts++
			return pgErr(pgerrcode.SerializationFailure)
		})
		require.Equal(t, retry.DefaultMaxAttempts, attempts)
		require.ErrorIs(t, err, retry.ErrExhausted)
		var ex *retry.ExhaustedError
		require.ErrorAs(t, err, &ex)
		require.Equal(t, retry.DefaultMaxAttempts, ex.Attempts)
	})
	t.Run("DoWith", func(t *testing.T) {
		t.Parallel()
		var waits []time.Duration
		attempts := 0
		err := retry.DoWith(context.Background(), nil, retry.Hooks{OnRetry: func(i retry.RetryData) { waits = append(waits, i.Wait) }},
			func(context.Context, int) error {
				attempts++
				return pgErr(pgerrcode.DeadlockDetected)
			})
		require.ErrorIs(t, err, retry.ErrExhausted)
		require.Equal(t, retry.DefaultMaxAttempts, attempts)
		require.Len(t, waits, retry.DefaultMaxAttempts-1)
		interval := retry.DefaultInitialInterval
		for i, w := range waits {
			spread := time.Duration(float64(interval) * retry.DefaultRandomizationFactor)
			require.GreaterOrEqual(t, w, interval-spread-time.Microsecond, "wait %d", i)
			require.LessOrEqual(t, w, interval+spread+time.Microsecond, "wait %d", i)
			interval = min(time.Duration(float64(interval)*retry.DefaultMultiplier), retry.DefaultMaxInterval)
		}
	})
}
