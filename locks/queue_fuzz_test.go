package locks

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// FuzzQueueClaimSQL checks the statement a Queue builds around its Ready
// condition, OrderBy and Done columns. It never panics, refusals match
// ErrInvalid, and an accepted statement, read as the server's lexer reads
// it:
//
//   - is one statement, with one locking clause, the claim's own;
//   - keeps every token of Ready inside the parentheses put around it, so
//     Ready cannot close them and add to the claiming SELECT (a LIMIT, an
//     ORDER BY, a UNION) or end it;
//   - numbers its parameters within the values it sends, the limit being
//     the one right after ReadyArgs.
//
// It needs no server.
func FuzzQueueClaimSQL(f *testing.F) {
	for _, ready := range []string{
		"done_at IS NULL", "state = $1 AND run_at <= now()", "a = 'x'' ; FOR UPDATE'", "a -- comment",
		"a) OR (b", "a)) UNION SELECT 1 FROM t WHERE ((b", "a /* ) */ = $2", "$q$)$q$ = a", "x = E'\\')'",
		"id IN (SELECT id FROM t FOR UPDATE)", "a; DROP TABLE t", "$3", "$0", "a\r) LIMIT 1 --",
	} {
		f.Add(ready, byte(2), "done_at")
	}
	f.Fuzz(func(t *testing.T, ready string, mode byte, col string) {
		q := Queue[struct{}]{Table: pgx.Identifier{"jobs"}, Key: "id", Ready: ready}
		for i := range int(mode % 4) {
			q.ReadyArgs = append(q.ReadyArgs, i)
		}
		switch mode / 4 % 3 {
		case 0:
			q.Done.Delete = true
		case 1:
			q.Done.Set = map[string]any{col: "done"}
		default:
			q.Done.SetNow = []string{col}
			q.OrderBy = []string{col, "id"}
		}
		const n = 7
		out, args, err := q.claimSQL(n)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("claimSQL with Ready %q: %v, which does not match ErrInvalid", ready, err)
			}
			return
		}
		checkClaimSQL(t, q, out, args, n)
	})
}

func checkClaimSQL(t *testing.T, q Queue[struct{}], out string, args []any, n int) {
	t.Helper()
	toks, err := scan(out)
	if err != nil {
		t.Fatalf("Ready %q: the claim does not scan: %v\n%s", q.Ready, err, out)
	}
	clauses := 0
	for i, tok := range toks {
		switch tok.kind {
		case tokSemi:
			t.Fatalf("Ready %q: the claim has a ';' at %d\n%s", q.Ready, tok.start, out)
		case tokParam:
			p, err := strconv.Atoi(out[tok.start+1 : tok.end])
			if err != nil || p < 1 || p > len(args) {
				t.Fatalf("Ready %q: the claim uses %s and sends %d value(s)\n%s", q.Ready, out[tok.start:tok.end], len(args), out)
			}
		case tokWord:
			if tok.text == "FOR" && hasLockingClause(toks[i:min(i+2, len(toks))]) {
				clauses++
			}
		}
	}
	if clauses != 1 {
		t.Fatalf("Ready %q: the claim has %d locking clauses, want 1\n%s", q.Ready, clauses, out)
	}
	if len(args) <= len(q.ReadyArgs) || args[len(q.ReadyArgs)] != n {
		t.Fatalf("Ready %q: the limit is not the value after ReadyArgs: %v", q.Ready, args)
	}
	if q.Ready == "" {
		return
	}
	// Where Ready lies in the claim: right after the WHERE the claim
	// writes, whatever the names hold.
	key, _ := names.Quote("", q.Key)
	table, _ := names.Table("", q.Table)
	prefix := "WITH claimed AS (SELECT " + key + " FROM " + table + " WHERE ("
	if !strings.HasPrefix(out, prefix+q.Ready) {
		t.Fatalf("Ready %q is not where the claim puts it\n%s", q.Ready, out)
	}
	from, to := len(prefix), len(prefix)+len(q.Ready)
	for i, tok := range toks {
		if tok.start < from {
			continue
		}
		if tok.start >= to {
			if tok.kind != tokClose || tok.depth != 1 {
				t.Fatalf("Ready %q: the first token after it is not the ')' that closes it\n%s", q.Ready, out)
			}
			break
		}
		if tok.end > to || tok.depth < 2 {
			t.Fatalf("Ready %q: token %d %q is outside the parentheses around Ready\n%s", q.Ready, i, out[tok.start:tok.end], out)
		}
	}
}
