package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrPoolTimeout is matched (errors.Is) by the error returned when a
// connection could not be had within [Options.AcquireTimeout] while the
// caller's ctx was still live. The error is a [*TimeoutError] whose text
// gives the pool's total, acquired, idle and waiting counts. It also
// matches context.DeadlineExceeded.
var ErrPoolTimeout = errors.New("pool: timed out waiting for a connection")

// ErrInvalid is matched by the error [Open] returns for bad input: a DSN
// that does not parse, or an option value that cannot be meant. It is the
// bad-input sentinel every txkit package has. The DSN itself is never part
// of the error.
var ErrInvalid = errors.New("pool: invalid input")

// ErrInsecure is matched by the error [Open] returns when the DSN's TLS
// setting is below the floor: a plaintext session is possible to a host
// that is not loopback or a unix socket (see [Options.AllowInsecure]), or
// [Options.VerifyFull] is set and the DSN does not verify the server's name.
var ErrInsecure = errors.New("pool: TLS below the required level")

// ErrDoesNotFit is matched by the error [Open] returns when the pool's size
// cannot fit the server's connection limits for the number of instances,
// or is below the deadlock floor of [Options.Workers].
var ErrDoesNotFit = errors.New("pool: pool size does not fit")

// ErrClosed is matched by the error of an acquire on a pool that Close was
// called on.
var ErrClosed = errors.New("pool: closed")

// ErrStillHeld is matched by the error [Pool.Close] returns when
// connections were still held at its deadline. The error is a
// [*CloseError] naming each.
var ErrStillHeld = errors.New("pool: connections still held at close")

// TimeoutError is the error of an acquire that waited longer than
// [Options.AcquireTimeout]. It matches [ErrPoolTimeout] and
// context.DeadlineExceeded.
type TimeoutError struct {
	Waited   time.Duration // the acquire timeout that passed
	Max      int32         // the pool's MaxConns
	Total    int32         // connections open (acquired + idle + being opened)
	Acquired int32         // connections in use
	Idle     int32         // connections ready in the pool
	Waiting  int64         // acquires waiting, this one included
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("pool: timed out after %v waiting for a connection (max %d, total %d, acquired %d, idle %d, waiting %d)",
		e.Waited, e.Max, e.Total, e.Acquired, e.Idle, e.Waiting)
}

// Is reports whether target is ErrPoolTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrPoolTimeout || target == context.DeadlineExceeded
}

// CloseError is the error of a [Pool.Close] whose deadline passed with
// connections still held. It matches [ErrStillHeld].
type CloseError struct {
	Held []Holder
}

func (e *CloseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pool: %d connection(s) still held at close:", len(e.Held))
	for _, h := range e.Held {
		b.WriteString(" [")
		b.WriteString(h.String())
		b.WriteString("]")
	}
	return b.String()
}

// Is reports whether target is ErrStillHeld.
func (e *CloseError) Is(target error) bool { return target == ErrStillHeld }

// ConnectError is the error of a failed connection attempt with nothing
// secret in it: pgconn's ConnectError carries the whole connection config,
// password included, and this one takes its place. Unwrap reaches the
// cause (a *pgconn.PgError for a refused password or database, a net
// error for an unreachable host).
type ConnectError struct {
	User, Database string
	msg            string
	cause          error
}

func (e *ConnectError) Error() string { return e.msg }
func (e *ConnectError) Unwrap() error { return e.cause }

// scrubConnectError replaces a *pgconn.ConnectError in err's chain with a
// [*ConnectError], and removes every secret from the text.
func scrubConnectError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		if hasSecret(err.Error(), secrets) {
			return errors.New(scrub(err.Error(), secrets))
		}
		return err
	}
	cause := ce.Unwrap()
	if cause != nil && hasSecret(cause.Error(), secrets) {
		cause = errors.New(scrub(cause.Error(), secrets))
	}
	user, db := "", ""
	if ce.Config != nil {
		user, db = ce.Config.User, ce.Config.Database
	}
	return &ConnectError{User: user, Database: db, msg: "pool: " + scrub(err.Error(), secrets), cause: cause}
}

func hasSecret(s string, secrets []string) bool {
	for _, x := range secrets {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "xxxxx")
		}
	}
	return s
}
