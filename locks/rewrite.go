package locks

import (
	"strings"

	"github.com/txkit/txkit/internal/ident"
)

// Apply returns query with o's locking clause appended. It refuses, with an
// error matching [ErrInvalid], anything but a single SELECT (or WITH ...
// SELECT, TABLE, or a parenthesized SELECT); and with [ErrHasLockingClause]
// a query that already has a locking clause, at any depth. Comments and
// string constants are skipped, never read as SQL, with the boundaries
// PostgreSQL's lexer gives them when standard_conforming_strings is on; a
// NUL byte is refused. A trailing semicolon is dropped, and a trailing
// comment is kept after the clause.
//
// [Query] and [QueryRow] call Apply; it is exported so that a query can be
// checked or logged without running it.
func (o Options) Apply(query string) (string, error) {
	if err := o.validate(); err != nil {
		return "", err
	}
	toks, err := scan(query)
	if err != nil {
		return "", err
	}
	toks, rest, err := singleStatement(query, toks)
	if err != nil {
		return "", err
	}
	switch first := toks[0]; {
	case first.kind == tokOpen:
	case first.kind == tokWord && (first.text == "SELECT" || first.text == "WITH" || first.text == "TABLE"):
	default:
		return "", invalid("a locking clause goes on a SELECT, and the query starts with %s", ident.Show(query[first.start:first.end]))
	}
	if hasLockingClause(toks) {
		return "", ErrHasLockingClause
	}
	end := toks[len(toks)-1].end
	return query[:end] + " " + o.String() + rest, nil
}

// singleStatement returns the tokens of the one statement in query and the
// text after its last token without the trailing semicolons (comments,
// spaces). It refuses an empty query and a second statement.
func singleStatement(query string, toks []token) ([]token, string, error) {
	last := -1
	for i, t := range toks {
		if t.kind != tokSemi {
			if last >= 0 && toks[last+1].kind == tokSemi {
				return nil, "", invalid("query has more than one statement")
			}
			last = i
		}
	}
	if last < 0 {
		return nil, "", invalid("empty query")
	}
	var rest strings.Builder
	from := toks[last].end
	for _, t := range toks[last+1:] {
		rest.WriteString(query[from:t.start])
		from = t.end
	}
	rest.WriteString(query[from:])
	return toks[:last+1], rest.String(), nil
}

// hasLockingClause reports whether toks hold FOR UPDATE, FOR NO KEY UPDATE,
// FOR SHARE or FOR KEY SHARE anywhere, subqueries included. FOR is
// otherwise followed by a number or expression (substring(s FROM 1 FOR 2)),
// never by these words unquoted.
func hasLockingClause(toks []token) bool {
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind != tokWord || toks[i].text != "FOR" || toks[i+1].kind != tokWord {
			continue
		}
		switch toks[i+1].text {
		case "UPDATE", "SHARE", "NO", "KEY":
			return true
		}
	}
	return false
}
