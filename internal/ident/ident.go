package ident

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/invalid"
)

// MaxLen is PostgreSQL's NAMEDATALEN-1. The server truncates a longer name
// with only a NOTICE, so a long name could silently address another table
// or column: it is refused instead.
const MaxLen = 63

// Table validates a table name of one to three parts (table, schema.table
// or catalog.schema.table) and quotes it. what names the caller's field in
// the error.
func Table(what string, name pgx.Identifier) (string, error) {
	if len(name) == 0 || len(name) > 3 {
		return "", fmt.Errorf("%s: a table name has 1 to 3 parts (table, schema and table, ...), not %d", what, len(name))
	}
	for _, part := range name {
		if err := Check(what, part); err != nil {
			return "", err
		}
	}
	return name.Sanitize(), nil
}

// Quote validates one name (a column, or a table in an OF list) and quotes
// it.
func Quote(what, name string) (string, error) {
	if err := Check(what, name); err != nil {
		return "", err
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// Check refuses names that quoting cannot carry faithfully. Quotes,
// semicolons, spaces and anything else are fine: quoting keeps them inside
// the name. The error quotes the name through [Show], so a huge name makes
// a short error.
func Check(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: empty name", what)
	case strings.IndexByte(name, 0) >= 0:
		// pgx.Identifier drops NUL bytes, which would change the name.
		return fmt.Errorf("%s: name %s contains a NUL byte", what, Show(name))
	case len(name) > MaxLen:
		return fmt.Errorf("%s: name %s is longer than %d bytes (PostgreSQL would truncate it)", what, Show(name), MaxLen)
	}
	return nil
}

// ShowMax is the longest input [Show] quotes whole, in bytes: a name one
// byte too long for PostgreSQL still shows in full.
const ShowMax = MaxLen + 1

// showPrefix is how many bytes of a longer input Show quotes.
const showPrefix = 32

// Show quotes s (Go syntax, as %q) for an error message. Input longer than
// [ShowMax] bytes is cut to a short prefix, on a character boundary,
// followed by "… (N bytes)": an error about a 1 MB name stays short.
func Show(s string) string {
	if len(s) <= ShowMax {
		return strconv.Quote(s)
	}
	cut := showPrefix
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Names validates and quotes names for one package: the error for a name
// that cannot be used matches the package's bad-input sentinel, Invalid.
type Names struct{ Invalid error }

// Table is [Table], with a bad name reported through n.Invalid.
func (n Names) Table(what string, name pgx.Identifier) (string, error) {
	q, err := Table(what, name)
	return q, n.wrap(err)
}

// Quote is [Quote], with a bad name reported through n.Invalid.
func (n Names) Quote(what, name string) (string, error) {
	q, err := Quote(what, name)
	return q, n.wrap(err)
}

// Check is [Check], with a bad name reported through n.Invalid.
func (n Names) Check(what, name string) error {
	return n.wrap(Check(what, name))
}

func (n Names) wrap(err error) error {
	if err == nil {
		return nil
	}
	return invalid.Errorf(n.Invalid, "%s", err.Error())
}
