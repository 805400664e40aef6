package optimistic

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1. The server truncates a longer
// name with only a NOTICE, so a long name could silently address another
// table or column: it is refused instead.
const maxIdentLen = 63

// quoteTable validates a table name of one to three parts and quotes it
// with pgx.Identifier.
func quoteTable(name pgx.Identifier) (string, error) {
	if len(name) == 0 || len(name) > 3 {
		return "", invalid("Table.Name has 1 to 3 parts (table, schema and table, ...), not %d", len(name))
	}
	for _, part := range name {
		if err := checkIdent("Table.Name", part); err != nil {
			return "", err
		}
	}
	return name.Sanitize(), nil
}

// quoteIdent validates a column name and quotes it.
func quoteIdent(what, name string) (string, error) {
	if err := checkIdent(what, name); err != nil {
		return "", err
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// checkIdent refuses names that quoting cannot carry faithfully; anything
// else, quotes and semicolons included, stays inside the quoted name.
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
