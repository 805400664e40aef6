package optimistic_test

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/optimistic"
)

type innerForms struct {
	Inner int64 `db:"inner_col"`
}

// tagForms has a field for every way pgx maps a column to a field.
type tagForms struct {
	UserID  int64 // untagged: the name matches ignoring case and underscores
	Exact   int64 `db:"exact_name"`    // tag: exact match
	Mixed   int64 `db:"MiXeD"`         // tag: no exact match, so ignoring case
	Opt     int64 `db:"opt,omitempty"` // tag options after a comma are not part of the name
	Skipped int64 `db:"-"`             // never scanned
	hidden  int64 //nolint:unused // unexported: never scanned
	innerForms
	Under int64 `db:"under_score_col"`
}

// columnFields must find, for every column, the field pgx's
// RowToStructByName scanned it into: Modify reads the columns back from
// those fields to save them. Each column carries a distinct value, so a
// column mapped to the wrong field shows.
func TestColumnFieldsAgreeWithPgx(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	const q = `SELECT 1::int8 AS user_id, 2::int8 AS exact_name, 3::int8 AS mixed, 4::int8 AS opt,
		5::int8 AS inner_col, 6::int8 AS under_score_col`
	rows, err := b.pool.Query(b.ctx, q)
	require.NoError(t, err)
	var cols []string
	for _, fd := range rows.FieldDescriptions() {
		cols = append(cols, fd.Name)
	}
	row, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[tagForms])
	require.NoError(t, err)

	paths := optimistic.ColumnFields(reflect.TypeFor[tagForms](), cols)
	v := reflect.ValueOf(row)
	for i, c := range cols {
		require.NotNil(t, paths[i], "no field for column %s", c)
		require.Equal(t, int64(i+1), v.FieldByIndex(paths[i]).Int(), "column %s", c)
	}
	require.Zero(t, row.Skipped)
}
