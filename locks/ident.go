package locks

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1. The server truncates a longer
// name with only a NOTICE, so a long name could silently address another
// table or column: it is refused instead.
const maxIdentLen = 63

// quoteTable validates a table name of one to three parts (table,
// schema.table or catalog.schema.table) and quotes it with pgx.Identifier.
func quoteTable(what string, name pgx.Identifier) (string, error) {
	if len(name) == 0 || len(name) > 3 {
		return "", invalid("%s: a table name has 1 to 3 parts (table, schema and table, ...), not %d", what, len(name))
	}
	for _, part := range name {
		if err := checkIdent(what, part); err != nil {
			return "", err
		}
	}
	return name.Sanitize(), nil
}

// quoteIdent validates one name (a column, or a table in an OF list) and
// quotes it.
func quoteIdent(what, name string) (string, error) {
	if err := checkIdent(what, name); err != nil {
		return "", err
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// checkIdent refuses names that quoting cannot carry faithfully. Quotes,
// semicolons, spaces and anything else are fine: quoting keeps them inside
// the name.
func checkIdent(what, name string) error {
	switch {
	case name == "":
		return invalid("%s: empty name", what)
	case strings.IndexByte(name, 0) >= 0:
		// pgx.Identifier drops NUL bytes, which would change the name.
		return invalid("%s: name %q contains a NUL byte", what, name)
	case len(name) > maxIdentLen:
		return invalid("%s: name %q is longer than %d bytes (PostgreSQL would truncate it)", what, name, maxIdentLen)
	}
	return nil
}
