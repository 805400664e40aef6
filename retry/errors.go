package retry

import (
	"errors"
	"fmt"
	"time"

	"github.com/txkit/txkit/internal/invalid"
)

// ErrExhausted is matched (errors.Is) by the error a retry loop returns when
// it gives up on a retryable error: attempts used up, MaxElapsedTime passed,
// or the next wait would end after the context's deadline. The same error
// also wraps the last attempt's error, so errors.As still finds its
// *pgconn.PgError.
var ErrExhausted = errors.New("retry: attempts exhausted")

// ErrInvalid is matched by the error [Do] and [DoWith] return when fn is
// nil: the only input of this package that cannot be run.
var ErrInvalid = errors.New("retry: invalid input")

// errNilFn is the error for a nil fn.
var errNilFn = invalid.Errorf(ErrInvalid, "nil fn")

// ExhaustedError is the error behind ErrExhausted, with the detail of why
// the loop stopped.
type ExhaustedError struct {
	Attempts int           // attempts made
	Elapsed  time.Duration // since the first attempt began
	Reason   string        // why no further attempt was made
	Err      error         // the last attempt's error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("retry: gave up after %d attempt(s) in %v (%s): %v",
		e.Attempts, e.Elapsed.Round(time.Millisecond), e.Reason, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }
