package ident_test

import (
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
