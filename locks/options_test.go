package locks_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/pgtimeout"
	"github.com/txkit/txkit/locks"
)

func TestStrengthAndWaitPolicyNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "FOR UPDATE", locks.ForUpdate.String())
	require.Equal(t, "FOR NO KEY UPDATE", locks.ForNoKeyUpdate.String())
	require.Equal(t, "FOR SHARE", locks.ForShare.String())
	require.Equal(t, "FOR KEY SHARE", locks.ForKeyShare.String())
	require.Equal(t, "Strength(9)", locks.Strength(9).String())
	require.Equal(t, locks.ForUpdate, locks.Strength(0), "the zero Strength is the strongest")

	require.Equal(t, "WAIT", locks.Wait.String())
	require.Equal(t, "NOWAIT", locks.NoWait.String())
	require.Equal(t, "SKIP LOCKED", locks.SkipLocked.String())
	require.Equal(t, "WaitPolicy(-1)", locks.WaitPolicy(-1).String())
	require.Equal(t, locks.Wait, locks.WaitPolicy(0))

	require.ErrorIs(t, locks.ValidateStrength(locks.Strength(9)), locks.ErrInvalid)
	require.ErrorIs(t, locks.ValidateWait(locks.WaitPolicy(3)), locks.ErrInvalid)
	require.NoError(t, locks.ValidateStrength(locks.ForKeyShare))
	require.NoError(t, locks.ValidateWait(locks.SkipLocked))
}

func TestOptionsString(t *testing.T) {
	t.Parallel()
	cases := []struct {
		o    locks.Options
		want string
	}{
		{locks.Options{}, "FOR UPDATE"},
		{locks.Options{Strength: locks.ForNoKeyUpdate, Wait: locks.NoWait}, "FOR NO KEY UPDATE NOWAIT"},
		{locks.Options{Strength: locks.ForShare, Of: []string{"jobs"}, Wait: locks.SkipLocked}, `FOR SHARE OF "jobs" SKIP LOCKED`},
		{locks.Options{Strength: locks.ForKeyShare, Of: []string{"a", "B"}}, `FOR KEY SHARE OF "a", "B"`},
		{locks.Options{Of: []string{`x"; DROP TABLE t; --`}}, `FOR UPDATE OF "x""; DROP TABLE t; --"`},
		{locks.Options{LockTimeout: time.Second}, "FOR UPDATE"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.o.String())
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, locks.Validate(locks.Options{}))
	err := locks.Validate(locks.Options{Strength: 7, Wait: 9, Of: []string{"", "a\x00b", strings.Repeat("x", 64)}, LockTimeout: -1})
	require.ErrorIs(t, err, locks.ErrInvalid)
	for _, want := range []string{"strength 7", "wait policy 9", "empty name", "NUL", "longer than 63", "Timeout is negative"} {
		require.Contains(t, err.Error(), want, "Validate reports every problem at once")
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	o := locks.Options{}
	cases := []struct {
		name, query, want string
	}{
		{"plain", "SELECT * FROM jobs WHERE id = $1", "SELECT * FROM jobs WHERE id = $1 FOR UPDATE"},
		{"lower case", "select 1", "select 1 FOR UPDATE"},
		{"trailing semicolons and space", "SELECT 1 ;; \n", "SELECT 1 FOR UPDATE  \n"},
		{"trailing line comment is kept after the clause", "SELECT 1 -- the one", "SELECT 1 FOR UPDATE -- the one"},
		{"trailing block comment", "SELECT 1 /* a /* nested */ comment */", "SELECT 1 FOR UPDATE /* a /* nested */ comment */"},
		{"limit", "SELECT id FROM jobs ORDER BY id LIMIT 10", "SELECT id FROM jobs ORDER BY id LIMIT 10 FOR UPDATE"},
		{"with", "WITH j AS (SELECT 1) SELECT * FROM jobs", "WITH j AS (SELECT 1) SELECT * FROM jobs FOR UPDATE"},
		{"table", "TABLE jobs", "TABLE jobs FOR UPDATE"},
		{"parenthesized", "(SELECT 1)", "(SELECT 1) FOR UPDATE"},
		{"words in a string are data", "SELECT 'x FOR UPDATE; DELETE' FROM t", "SELECT 'x FOR UPDATE; DELETE' FROM t FOR UPDATE"},
		{"doubled quote", "SELECT 'it''s; FOR SHARE'", "SELECT 'it''s; FOR SHARE' FOR UPDATE"},
		{"escape string", `SELECT E'\' FOR UPDATE ;'`, `SELECT E'\' FOR UPDATE ;' FOR UPDATE`},
		{"dollar quotes", "SELECT $q$ FOR UPDATE; $$ $q$, $$;$$", "SELECT $q$ FOR UPDATE; $$ $q$, $$;$$ FOR UPDATE"},
		{"quoted identifier", `SELECT "for" FROM "update; x"`, `SELECT "for" FROM "update; x" FOR UPDATE`},
		{"comment inside", "SELECT 1 /* FOR UPDATE */ -- FOR SHARE\n FROM t", "SELECT 1 /* FOR UPDATE */ -- FOR SHARE\n FROM t FOR UPDATE"},
		{"substring FOR is not a lock", "SELECT substring(s FROM 1 FOR 2) FROM t", "SELECT substring(s FROM 1 FOR 2) FROM t FOR UPDATE"},
		{"dollar in identifier", "SELECT a$b FROM t", "SELECT a$b FROM t FOR UPDATE"},
		// PostgreSQL ends a -- comment at \r as at \n: what follows is SQL.
		{"carriage return ends a comment", "SELECT 1 --\r SKIP LOCKED", "SELECT 1 --\r SKIP LOCKED FOR UPDATE"},
		{"comment ended by carriage return is kept", "SELECT 1 -- c\r", "SELECT 1 FOR UPDATE -- c\r"},
		// A string continued on a later line keeps the E'' escapes.
		{"escape string continued", "SELECT E'a'\n'\\' FOR UPDATE ;'", "SELECT E'a'\n'\\' FOR UPDATE ;' FOR UPDATE"},
		{"escape string continued after a comment", "SELECT E'a' -- c\r '\\' ;'", "SELECT E'a' -- c\r '\\' ;' FOR UPDATE"},
		{"standard strings are not continued on one line", "SELECT 'a' || 'b'", "SELECT 'a' || 'b' FOR UPDATE"},
		{"a number ends before a dollar quote", "SELECT 1$a$;$a$", "SELECT 1$a$;$a$ FOR UPDATE"},
		{"a number ends before E''", "SELECT 1e'\\' ;'", "SELECT 1e'\\' ;' FOR UPDATE"},
		{"exponent", "SELECT 1.5e-3", "SELECT 1.5e-3 FOR UPDATE"},
		{"dollar tag with digits and high bytes", "SELECT $é1$;$é1$", "SELECT $é1$;$é1$ FOR UPDATE"},
		{"slash star slash opens a nested comment", "SELECT 1 /* /*/ */ ; */", "SELECT 1 FOR UPDATE /* /*/ */ ; */"},
		{"unicode escapes", `SELECT U&'\0041' UESCAPE '!', U&"a""b"`, `SELECT U&'\0041' UESCAPE '!', U&"a""b" FOR UPDATE`},
		{"bit string", "SELECT B'1''0'", "SELECT B'1''0' FOR UPDATE"},
		{"vertical tab is not taken for a space", "SELECT 1\v", "SELECT 1\v FOR UPDATE"},
		{"keywords are ASCII", "SELECT * FROM t FOR ſhare", "SELECT * FROM t FOR ſhare FOR UPDATE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := o.Apply(c.query)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	t.Parallel()
	has := []string{
		"SELECT * FROM t FOR UPDATE",
		"SELECT * FROM t for share",
		"SELECT * FROM t FOR NO KEY UPDATE",
		"SELECT * FROM t FOR KEY SHARE SKIP LOCKED",
		"SELECT * FROM t FOR UPDATE OF t NOWAIT;",
		"SELECT * FROM (SELECT * FROM t FOR UPDATE) s",
		"WITH c AS (SELECT * FROM t FOR SHARE) SELECT * FROM c",
		"SELECT * FROM t FOR\n/* comment */ UPDATE",
	}
	for _, q := range has {
		_, err := locks.Options{}.Apply(q)
		require.ErrorIs(t, err, locks.ErrHasLockingClause, q)
	}
	bad := map[string]string{
		"":                                "empty query",
		" ;; -- nothing":                  "empty query",
		"SELECT 1; SELECT 2":              "more than one statement",
		"SELECT 1; DROP TABLE jobs":       "more than one statement",
		"UPDATE jobs SET x = 1":           `starts with "UPDATE"`,
		"DELETE FROM jobs":                `starts with "DELETE"`,
		"VALUES (1)":                      `starts with "VALUES"`,
		"SELECT 'unterminated":            "unterminated string",
		`SELECT "unterminated`:            "unterminated quoted identifier",
		"SELECT 1 /* unterminated":        "unterminated /* comment",
		"SELECT $x$ unterminated":         "unterminated dollar-quoted",
		"SELECT (1":                       "unbalanced '('",
		"SELECT 1)":                       "unbalanced ')'",
		"SELECT E'\\' FOR UPDATE":         "unterminated string",
		"SELECT 1 -- ok\n; SELECT 2 -- x": "more than one statement",
		// Each of these was once taken for one statement.
		"SELECT id FROM t WHERE id = 1 --\r; DROP TABLE x":   "more than one statement",
		"SELECT E'a'\n'\\' -- ' ; DROP TABLE x; --'":         "more than one statement",
		"SELECT E'a' --c\r\n\t'\\' -- ' ; DROP TABLE x; --'": "more than one statement",
		"SELECT 1$a$ -- $a$; DROP TABLE x":                   "more than one statement",
		"SELECT 1e'\\' -- '; DROP TABLE x":                   "more than one statement",
		"SELECT 1 \x00; DROP TABLE x":                        "NUL byte",
	}
	for q, want := range bad {
		_, err := locks.Options{}.Apply(q)
		require.ErrorIs(t, err, locks.ErrInvalid, q)
		require.Contains(t, err.Error(), want, q)
	}
	_, err := locks.Options{Strength: 5}.Apply("SELECT 1")
	require.ErrorIs(t, err, locks.ErrInvalid)

	// Errors quote input briefly: a 1 MB token makes a short error.
	huge := strings.Repeat("x", 1<<20)
	for q, size := range map[string]int{huge: len(huge), "SELECT $" + huge + "$": len(huge) + 2} {
		_, err = locks.Options{}.Apply(q)
		require.ErrorIs(t, err, locks.ErrInvalid)
		require.Less(t, len(err.Error()), 300)
		require.Contains(t, err.Error(), fmt.Sprintf("… (%d bytes)", size))
	}
}

// TestTimeoutRange: Options.LockTimeout must fit PostgreSQL's int32
// milliseconds; beyond that, or negative, it is refused before any SQL.
func TestTimeoutRange(t *testing.T) {
	t.Parallel()
	require.NoError(t, locks.Validate(locks.Options{LockTimeout: pgtimeout.Max}))
	for _, d := range []time.Duration{-1, pgtimeout.Max + time.Millisecond, 30 * 24 * time.Hour, math.MaxInt64} {
		err := locks.Validate(locks.Options{LockTimeout: d})
		require.ErrorIs(t, err, locks.ErrInvalid, "%v", d)
		require.Contains(t, err.Error(), "Timeout", "%v", d)
		_, err = locks.Options{LockTimeout: d}.Apply("SELECT 1")
		require.ErrorIs(t, err, locks.ErrInvalid, "%v", d)
	}
}
