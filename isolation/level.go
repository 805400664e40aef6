package isolation

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// Level is a transaction isolation level. The zero value, Default, leaves
// the choice to the server (default_transaction_isolation, normally READ
// COMMITTED).
type Level int

// The isolation levels PostgreSQL runs. PostgreSQL accepts READ UNCOMMITTED
// but runs it as READ COMMITTED, so there is no separate constant: [Parse]
// maps "read uncommitted" to ReadCommitted.
const (
	Default Level = iota
	ReadCommitted
	RepeatableRead
	Serializable
)

// ErrUnknownLevel is returned by Parse for a name that is not an isolation
// level, and by Validate for a Level outside the constants above.
var ErrUnknownLevel = errors.New("isolation: unknown isolation level")

// String returns the level as PostgreSQL spells it ("SERIALIZABLE",
// "REPEATABLE READ", "READ COMMITTED"), or "DEFAULT".
func (l Level) String() string {
	switch l {
	case Default:
		return "DEFAULT"
	case ReadCommitted:
		return "READ COMMITTED"
	case RepeatableRead:
		return "REPEATABLE READ"
	case Serializable:
		return "SERIALIZABLE"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Validate returns an error wrapping ErrUnknownLevel if l is not one of the
// declared levels.
func (l Level) Validate() error {
	if l < Default || l > Serializable {
		return fmt.Errorf("%w: %d", ErrUnknownLevel, int(l))
	}
	return nil
}

// Parse reads a level name. Case, surrounding space, and the separator
// between words (space, underscore or hyphen) do not matter: "serializable",
// "REPEATABLE READ", "repeatable_read" and "read-committed" all parse.
// "read uncommitted" parses as ReadCommitted, because that is how PostgreSQL
// runs it; "" and "default" parse as Default.
func Parse(s string) (Level, error) {
	// Any white space counts, not just ' ' and '\t': a value read from a
	// file or an environment variable often ends in "\n" or "\r\n".
	norm := strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return unicode.IsSpace(r) || r == '_' || r == '-'
	}), " ")
	switch norm {
	case "", "default":
		return Default, nil
	case "read uncommitted", "read committed":
		return ReadCommitted, nil
	case "repeatable read", "snapshot":
		return RepeatableRead, nil
	case "serializable":
		return Serializable, nil
	}
	return Default, fmt.Errorf("%w: %q (want serializable, repeatable read, read committed or default)", ErrUnknownLevel, s)
}

// TxIsoLevel maps l to pgx's type; Default maps to "", which lets the
// server choose.
func (l Level) TxIsoLevel() pgx.TxIsoLevel {
	switch l {
	case ReadCommitted:
		return pgx.ReadCommitted
	case RepeatableRead:
		return pgx.RepeatableRead
	case Serializable:
		return pgx.Serializable
	}
	return ""
}

// FromTxIsoLevel maps pgx's level to a Level. pgx.ReadUncommitted maps to
// ReadCommitted, as PostgreSQL runs it.
func FromTxIsoLevel(p pgx.TxIsoLevel) (Level, error) {
	return Parse(string(p))
}

// Stronger reports whether l prevents strictly more anomalies than other.
// Default is treated as ReadCommitted, the server's usual default. A Level
// that fails Validate prevents nothing, so it is stronger than nothing.
func (l Level) Stronger(other Level) bool {
	return l.rank() > other.rank()
}

// rank orders levels by the phenomena they prevent (see [Level.Prevents]);
// values outside the constants rank below every real level so that an
// out-of-range Level is never taken for one stronger than Serializable.
func (l Level) rank() int {
	switch l {
	case Default, ReadCommitted:
		return 1
	case RepeatableRead:
		return 2
	case Serializable:
		return 3
	}
	return 0
}

// MarshalText and UnmarshalText let a Level live in configuration files
// (JSON, YAML, flags through encoding.TextUnmarshaler).
func (l Level) MarshalText() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return []byte(strings.ToLower(l.String())), nil
}

// UnmarshalText parses text with Parse.
func (l *Level) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
