package locks_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/tests/pgtest"
)

// FuzzApplyAgreesWithServer compares Apply's idea of a query with the
// server's. For every query Apply accepts, the rewritten text is parsed by
// PostgreSQL (a Parse message: never executed) and:
//
//   - it must be one statement: the server must not refuse it with
//     "cannot insert multiple commands into a prepared statement";
//   - a syntax error may not lie after the clause: Apply keeps only
//     comments there, so the server must see nothing in them;
//   - if it parses, every row mark in the server's parse tree
//     (debug_print_parse) has the strength and wait policy asked for, and
//     the outermost query has row marks at all, or else the same clause
//     with OF naming a missing table must make the server complain about
//     that table: the clause is read as the locking clause, not as a
//     comment or a string.
//
// The seeds, in testdata/fuzz, hold the queries that once got past the
// scanner. It needs a server: without TEST_DATABASE_URL it skips. One
// connection is used for every input, with a short statement_timeout.
func FuzzApplyAgreesWithServer(f *testing.F) {
	f.Add("SELECT id FROM t WHERE id = $1", byte(0))
	if os.Getenv("TEST_DATABASE_URL") == "" {
		f.Skip("TEST_DATABASE_URL is not set: comparing with the server needs one")
	}
	p := newParser(f)
	f.Fuzz(func(t *testing.T, query string, lock byte) {
		if lock&0x80 != 0 {
			// Most mutations of a whole query stop being a SELECT; this
			// half of the inputs fuzzes a condition, where strings,
			// comments and semicolons matter most.
			query = "SELECT id FROM t WHERE " + query
		}
		o := fuzzOptions(lock)
		out, err := o.Apply(query)
		if err != nil {
			return
		}
		clauseEnd := clauseEnd(t, query, out, o.String())
		tree, err := p.parse(out)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("parse %q: %v", out, err)
			}
			if strings.Contains(pgErr.Message, "multiple commands") {
				t.Fatalf("Apply(%q) = %q, which the server reads as more than one statement", query, out)
			}
			if pgErr.Code == pgerrcode.SyntaxError && int(pgErr.Position) > utf8.RuneCountInString(out[:clauseEnd]) {
				t.Fatalf("Apply(%q) = %q: the server reads the text after the clause as SQL: %v (position %d)", query, out, pgErr.Message, pgErr.Position)
			}
			return
		}
		for _, m := range tree.marks {
			if m != (rowMark{strength: serverStrength[o.Strength], wait: serverWait[o.Wait]}) {
				t.Fatalf("Apply(%q) = %q with %v: the server locks with strength %d, wait policy %d", query, out, o, m.strength, m.wait)
			}
		}
		if tree.topMarked {
			return
		}
		// No row marks at the top: nothing to lock there (SELECT 1), or the
		// clause was not read. Naming a missing table in OF tells which.
		marker := o
		marker.Of = []string{"txkit_fuzz_missing"}
		out2, err := marker.Apply(query)
		if err != nil {
			t.Fatalf("Apply(%q) with OF refused what it accepted without: %v", query, err)
		}
		if _, err := p.parse(out2); err == nil || !strings.Contains(err.Error(), `"txkit_fuzz_missing" in `+o.Strength.String()+` clause`) {
			t.Fatalf("Apply(%q) = %q: the server does not read the clause %v (got %v)", query, out2, marker, err)
		}
	})
}

// fuzzOptions picks a strength and a wait policy from the low bits of one
// byte.
func fuzzOptions(b byte) locks.Options {
	return locks.Options{Strength: locks.Strength(b % 4), Wait: locks.WaitPolicy(b % 128 / 4 % 3)}
}

// The server's numbers for them (LockClauseStrength, LockWaitPolicy).
var (
	serverStrength = map[locks.Strength]int{locks.ForKeyShare: 1, locks.ForShare: 2, locks.ForNoKeyUpdate: 3, locks.ForUpdate: 4}
	serverWait     = map[locks.WaitPolicy]int{locks.Wait: 0, locks.SkipLocked: 1, locks.NoWait: 2}
)

// clauseEnd returns the offset in out just past the clause Apply added
// after the query's last token: out is query[:end] + " " + clause + rest.
func clauseEnd(t *testing.T, query, out, clause string) int {
	n := 0
	for n < len(query) && n < len(out) && query[n] == out[n] {
		n++
	}
	for _, end := range []int{n, n - 1} {
		if end >= 0 && strings.HasPrefix(out[end:], " "+clause) {
			return end + 1 + len(clause)
		}
	}
	t.Fatalf("Apply(%q) = %q: not the query's tokens, the clause and the rest", query, out)
	return 0
}

// parser asks the server to parse statements on one connection, with
// debug_print_parse sending the parse tree back as a LOG message.
type parser struct {
	conn *pgx.Conn
	tree string // the last parse tree received
}

func newParser(f *testing.F) *parser {
	p := &parser{}
	cfg, err := pgx.ParseConfig(pgtest.NewDatabase(f))
	if err != nil {
		f.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "LOG" && n.Message == "parse tree:" {
			p.tree = n.Detail
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.conn.Close(context.Background()) })
	_, err = p.conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text);
		CREATE TABLE x (id int);
		SET statement_timeout = '2s';
		SET lock_timeout = '1s';
		SET debug_pretty_print = off;
		SET client_min_messages = log;
		SET debug_print_parse = on`)
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// rowMark is a ROWMARKCLAUSE of the parse tree.
type rowMark struct{ strength, wait int }

// parsed is what the fuzz target reads from a parse tree: every row mark,
// at any depth, and whether the outermost query has any.
type parsed struct {
	marks     []rowMark
	topMarked bool
}

// parse sends sql in a Parse message (the statement is prepared, never
// run) and reads the parse tree the server logged for it.
func (p *parser) parse(sql string) (parsed, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.tree = ""
	if _, err := p.conn.PgConn().Prepare(ctx, "", sql, nil); err != nil {
		if p.conn.IsClosed() {
			return parsed{}, fmt.Errorf("connection lost: %w", err)
		}
		return parsed{}, err
	}
	if p.tree == "" {
		return parsed{}, errors.New("the server sent no parse tree")
	}
	return readTree(p.tree)
}

// readTree reads a node tree as PostgreSQL's outfuncs write it: {NODE
// :field value ...}, lists in parentheses, a backslash escaping the next
// character of a name.
func readTree(s string) (parsed, error) {
	toks := nodeTokens(s)
	var out parsed
	lastMarks := -1
	for i := 0; i < len(toks); i++ {
		switch {
		case toks[i] == ":rowMarks":
			lastMarks = i
		case toks[i] == "{" && i+1 < len(toks) && toks[i+1] == "ROWMARKCLAUSE":
			m := rowMark{strength: -1, wait: -1}
			for i += 2; i+1 < len(toks) && toks[i] != "}"; i++ {
				switch toks[i] {
				case ":strength":
					_, _ = fmt.Sscan(toks[i+1], &m.strength)
				case ":waitPolicy":
					_, _ = fmt.Sscan(toks[i+1], &m.wait)
				}
			}
			out.marks = append(out.marks, m)
		}
	}
	// The outermost query's rowMarks is the last: only setOperations,
	// constraint and check lists and locations follow it.
	if lastMarks < 0 || lastMarks+1 >= len(toks) {
		return parsed{}, fmt.Errorf("no rowMarks in the parse tree %q", s)
	}
	out.topMarked = toks[lastMarks+1] == "("
	return out, nil
}

// nodeTokens splits a node tree into tokens: unescaped braces and
// parentheses alone, other runs up to unescaped whitespace.
func nodeTokens(s string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
			flush()
		case c == '{' || c == '}' || c == '(' || c == ')':
			flush()
			toks = append(toks, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

// FuzzQueueClaimAgreesWithServer has PostgreSQL parse (never run) the
// claiming statement a Queue builds around a fuzzed Ready condition: it
// must be one statement, and if it parses, the server locks with FOR NO
// KEY UPDATE SKIP LOCKED and nothing else. FuzzQueueClaimSQL checks the
// same statement without a server. Without TEST_DATABASE_URL it skips.
func FuzzQueueClaimAgreesWithServer(f *testing.F) {
	for _, ready := range []string{"v IS NULL", "v = 'x; FOR UPDATE' -- c", "id IN (SELECT id FROM x)", "$q$)$q$ = v"} {
		f.Add(ready)
	}
	if os.Getenv("TEST_DATABASE_URL") == "" {
		f.Skip("TEST_DATABASE_URL is not set: comparing with the server needs one")
	}
	p := newParser(f)
	f.Fuzz(func(t *testing.T, ready string) {
		q := locks.Queue[struct{}]{
			// No ReadyArgs: the server must infer every parameter's type
			// to parse the claim, and it cannot for one Ready leaves out.
			Table: pgx.Identifier{"t"}, Key: "id", Ready: ready,
			Done: locks.Done{Set: map[string]any{"v": "done"}},
		}
		out, _, err := q.ClaimSQL(10)
		if err != nil {
			return
		}
		tree, err := p.parse(out)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("parse %q: %v", out, err)
			}
			if strings.Contains(pgErr.Message, "multiple commands") {
				t.Fatalf("Ready %q: the server reads the claim as more than one statement\n%s", ready, out)

			}
			return
		}
		want := rowMark{strength: serverStrength[locks.ForNoKeyUpdate], wait: serverWait[locks.SkipLocked]}
		if len(tree.marks) == 0 {
			t.Fatalf("Ready %q: the server reads no locking clause in the claim\n%s", ready, out)
		}
		for _, m := range tree.marks {
			if m != want {
				t.Fatalf("Ready %q: the server locks with strength %d, wait policy %d\n%s", ready, m.strength, m.wait, out)
			}
		}
	})
}
