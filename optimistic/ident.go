package optimistic

import (
	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/ident"
)

// quoteTable validates a table name and quotes it; see internal/ident.
func quoteTable(what string, name pgx.Identifier) (string, error) {
	q, err := ident.Table(what, name)
	return q, asInvalid(err)
}

// quoteIdent validates one name and quotes it.
func quoteIdent(what, name string) (string, error) {
	q, err := ident.Quote(what, name)
	return q, asInvalid(err)
}

func asInvalid(err error) error {
	if err == nil {
		return nil
	}
	return invalid("%s", err.Error())
}
