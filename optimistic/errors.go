package optimistic

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/ident"
	problems "github.com/txkit/txkit/internal/invalid"
)

// ErrConflict is matched (errors.Is) by the error of a versioned write
// whose row still exists but no longer holds the version that was read:
// another writer got there first. The error is a [*ConflictError], which
// carries the version the row holds now. [Modify] retries it with a fresh
// read; when it gives up, its error still matches ErrConflict (and
// retry.ErrExhausted).
var ErrConflict = errors.New("optimistic: the row's version moved on since it was read")

// ErrNotFound is matched by the error of a versioned write, or of
// [Modify]'s read, when no row has the key: it never existed, or it was
// deleted. A versioned write tells this apart from [ErrConflict] in the
// same round trip.
var ErrNotFound = errors.New("optimistic: no row with that key")

// ErrNullVersion is matched by the error of a versioned write, or of
// [Modify]'s read, when the row exists but its version column is NULL: no
// version can match it, so it can never be written. Declare the column
// NOT NULL DEFAULT 0 (any start will do) and give existing rows a version.
var ErrNullVersion = errors.New("optimistic: the row's version is NULL")

// ErrInvalid is matched by the error returned for input that cannot be run:
// an empty or over-long table or column name, a Set that names the key or
// version column, a row type that is not a struct or has no version field.
var ErrInvalid = errors.New("optimistic: invalid input")

// ConflictError is the detail of an [ErrConflict].
type ConflictError struct {
	Table    pgx.Identifier
	Key      any
	Expected int64 // the version the writer read
	Current  int64 // the version the row holds now
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("optimistic: %s %v: version %d was read, but the row is now at version %d",
		e.Table.Sanitize(), e.Key, e.Expected, e.Current)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// notFound returns an error matching ErrNotFound that names the row.
func notFound(table pgx.Identifier, key any) error {
	return fmt.Errorf("optimistic: %s %v: %w", table.Sanitize(), key, ErrNotFound)
}

// nullVersion returns an error matching ErrNullVersion that names the row
// and the column.
func nullVersion(table pgx.Identifier, key any, column string) error {
	return fmt.Errorf("optimistic: %s %v: %w: the version column %s must be NOT NULL (declare it NOT NULL DEFAULT 0)",
		table.Sanitize(), key, ErrNullVersion, column)
}

func invalid(format string, args ...any) error {
	return problems.Errorf(ErrInvalid, format, args...)
}

// names validates and quotes the table and column names given to this
// package.
var names = ident.Names{Invalid: ErrInvalid}
