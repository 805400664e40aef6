package ident_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/ident"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQuote(t *testing.T) {
	t.Parallel()
	q, err := ident.Quote("col", `we"ird; DROP TABLE x`)
	require.NoError(t, err)
	require.Equal(t, `"we""ird; DROP TABLE x"`, q)
	for _, bad := range []string{"", "a\x00b", strings.Repeat("x", ident.MaxLen+1)} {
		_, err := ident.Quote("col", bad)
		require.Error(t, err, "%q", bad)
		require.Contains(t, err.Error(), "col: ")
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	q, err := ident.Table("t", pgx.Identifier{"public", "jobs"})
	require.NoError(t, err)
	require.Equal(t, `"public"."jobs"`, q)
	for _, bad := range []pgx.Identifier{nil, {"a", "b", "c", "d"}, {"public", ""}} {
		_, err := ident.Table("t", bad)
		require.Error(t, err, "%q", bad)
	}
}

// FuzzQuote checks the quoting every helper relies on: an accepted name
// comes back as one double-quoted identifier that reads back as exactly
// the name, whatever quotes, semicolons or spaces it holds.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"jobs", `a"b`, `x"; DROP TABLE t; --`, "with space", `""`, "é", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		q, err := ident.Quote("col", name)
		if err != nil {
			return
		}
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("Quote(%q) = %q: not one quoted identifier", name, q)
		}
		inner := q[1 : len(q)-1]
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			t.Fatalf("Quote(%q) = %q: a lone quote would end the identifier early", name, q)
		}
		if got := strings.ReplaceAll(inner, `""`, `"`); got != name {
			t.Fatalf("Quote(%q) = %q reads back as %q", name, q, got)
		}
	})
}

// TestErrorsQuoteLongNamesShort: a huge invalid name makes a short error
// that still says which name and how long it was.
func TestErrorsQuoteLongNamesShort(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("é", 1<<19) // 1 MiB
	for _, name := range []string{huge, huge + "\x00"} {
		_, err := ident.Quote("Key", name)
		require.Error(t, err)
		require.Less(t, len(err.Error()), 200, "the error must not quote the whole name")
		require.Contains(t, err.Error(), "Key: name \"éé")
		require.Contains(t, err.Error(), fmt.Sprintf("… (%d bytes)", len(name)))
	}
	_, err := ident.Table("Table", pgx.Identifier{"public", huge})
	require.Less(t, len(err.Error()), 200)

	// A name just over the limit still shows whole.
	long := strings.Repeat("x", ident.MaxLen+1)
	_, err = ident.Quote("Key", long)
	require.Contains(t, err.Error(), `"`+long+`"`)

	require.Equal(t, `"a\"b"`, ident.Show(`a"b`))
	require.Equal(t, `"`+strings.Repeat("x", 32)+`"… (100 bytes)`, ident.Show(strings.Repeat("x", 100)))
	// The cut falls on a character boundary, never inside an é.
	s := "a" + strings.Repeat("é", 100)
	require.Equal(t, `"a`+strings.Repeat("é", 15)+`"… (201 bytes)`, ident.Show(s))
}

// A package's Names report a bad name through its own sentinel, and pass
// good names through quoted.
func TestNamesMatchTheirSentinel(t *testing.T) {
	t.Parallel()
	errBad := errors.New("pkg: invalid input")
	n := ident.Names{Invalid: errBad}
	_, err := n.Table("T", pgx.Identifier{})
	require.ErrorIs(t, err, errBad)
	_, err = n.Quote("C", "")
	require.ErrorIs(t, err, errBad)
	require.ErrorIs(t, n.Check("C", "a\x00b"), errBad)
	require.ErrorContains(t, n.Check("C", "a\x00b"), "C: name")
	q, err := n.Quote("C", "ok")
	require.NoError(t, err)
	require.Equal(t, `"ok"`, q)
	require.NoError(t, n.Check("C", "ok"))
}
