package optimistic

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// ModifyOptions configure [Modify]. The zero value retries conflicts under
// retry.Default().
type ModifyOptions struct {
	// Retry says how many times, and how patiently, to start again after
	// a conflict; nil means retry.Default(). Only ErrConflict is retried:
	// other errors, serialization failures included, are returned for the
	// transaction's owner to handle (txn.WithTx retries those from BEGIN).
	Retry *retry.Policy
	// OnConflict, if set, is called with every conflict an attempt runs
	// into, the last one included: a count of them says how contended the
	// row is. It runs on the caller's goroutine.
	OnConflict func(*ConflictError)
}

// Modify loads the row of t with key into a T, calls change to modify it,
// and saves it with a versioned update ([Table.Update]) that expects the
// version it loaded. When the save finds that another writer got there
// first ([ErrConflict]), Modify starts again from a fresh read, under
// opts.Retry; change must therefore be free of side effects outside the
// row, and may run more than once. It returns the row as saved, with its
// new version.
//
//	item, err := optimistic.Modify(ctx, pool, items, id, optimistic.ModifyOptions{},
//		func(it *Item) error {
//			if it.Stock < n {
//				return ErrOutOfStock // returned as it is, not retried
//			}
//			it.Stock -= n
//			return nil
//		})
//
// T is a struct read with pgx.RowToStructByName from SELECT *: it has a
// field for every column of the table, named alike or by a `db` tag, the
// version column included (any integer type, signed or unsigned; one too
// narrow for the next version is refused before the save). Every column
// but the key and the version is written back. An error from change, or one from the
// server, is returned as it is, except that an ErrConflict from change (a
// versioned write of its own that lost) is retried like the save's. When
// the conflicts outlast the policy, the error matches both ErrConflict and
// retry.ErrExhausted.
//
// Like Update, Modify runs in ctx's transaction if there is one (txn.Q),
// else each statement runs on db by itself: the version check is what
// keeps a concurrent write from being lost, so no transaction is needed.
func Modify[T any](ctx context.Context, db txn.Querier, t Table, key any, opts ModifyOptions, change func(row *T) error) (T, error) {
	var zero T
	if change == nil {
		return zero, invalid("Modify: nil change")
	}
	if typ := reflect.TypeFor[T](); typ.Kind() != reflect.Struct {
		return zero, invalid("Modify: the row type %v is not a struct", typ)
	}
	q, err := t.quote()
	if err != nil {
		return zero, err
	}
	if _, err := querier(ctx, db); err != nil {
		return zero, err
	}
	load := "SELECT * FROM " + q.table + " WHERE " + q.key + " = $1"

	var saved T
	hooks := retry.Hooks{Retryable: func(err error) bool { return errors.Is(err, ErrConflict) }}
	err = retry.DoWith(ctx, opts.Retry, hooks, func(ctx context.Context, _ int) error {
		row, err := modifyOnce(ctx, txn.Q(ctx, db), t, load, key, change)
		var c *ConflictError
		if opts.OnConflict != nil && errors.As(err, &c) {
			opts.OnConflict(c)
		}
		if err != nil {
			return err
		}
		saved = row
		return nil
	})
	if err != nil {
		return zero, err
	}
	return saved, nil
}

// modifyOnce is one read-change-save attempt.
func modifyOnce[T any](ctx context.Context, db txn.Querier, t Table, load string, key any, change func(*T) error) (T, error) {
	var zero T
	row, shape, err := loadRow[T](ctx, db, t, load, key)
	if err != nil {
		return zero, err
	}
	v := reflect.ValueOf(&row).Elem()
	vf := v.FieldByIndex(shape.fields[shape.version])
	read, err := readVersion(vf, shape.cols[shape.version])
	if err != nil {
		return zero, err
	}
	if err := change(&row); err != nil {
		return zero, err
	}
	set, err := shape.setList(v, t.Key)
	if err != nil {
		return zero, err
	}
	next, err := t.Update(ctx, db, key, read, set)
	if err != nil {
		return zero, err
	}
	if vf.CanInt() {
		vf.SetInt(next)
	} else {
		vf.SetUint(uint64(next))
	}
	return row, nil
}

// rowShape is how a row's columns map onto the fields of its struct type.
type rowShape struct {
	cols    []string
	fields  [][]int // for each column, the index path of its field
	version int     // the version column's position in cols
}

// loadRow reads the row with key into a T, and how its columns map onto
// T's fields.
func loadRow[T any](ctx context.Context, db txn.Querier, t Table, load string, key any) (T, rowShape, error) {
	var zero T
	var shape rowShape
	rows, err := db.Query(ctx, load, key)
	if err != nil {
		return zero, shape, err
	}
	row, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (T, error) {
		// Checked before pgx maps the row, so that a row type or a row
		// that cannot be saved gets this package's error, not pgx's.
		if shape, err = shapeOf[T](t, r.FieldDescriptions()); err != nil {
			return zero, err
		}
		if r.RawValues()[shape.version] == nil {
			q, _ := names.Quote("Table.Version", shape.cols[shape.version])
			return zero, nullVersion(t.Name, key, q)
		}
		return pgx.RowToStructByName[T](r)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, shape, notFound(t.Name, key)
	}
	return row, shape, err
}

// shapeOf maps the columns of a row of t onto the fields of T, and
// refuses a row type that does not hold every column.
func shapeOf[T any](t Table, fds []pgconn.FieldDescription) (rowShape, error) {
	typ := reflect.TypeFor[T]()
	version := t.Version
	if version == "" {
		version = DefaultVersion
	}
	var shape rowShape
	for _, fd := range fds {
		shape.cols = append(shape.cols, fd.Name)
	}
	shape.version = slices.Index(shape.cols, version)
	if shape.version < 0 {
		return shape, invalid("Modify: %s has no column %q", t.Name.Sanitize(), version)
	}
	shape.fields = columnFields(typ, shape.cols)
	if shape.fields[shape.version] == nil {
		return shape, invalid("Modify: the row type %v has no field for the version column %q", typ, version)
	}
	for i, f := range shape.fields {
		if f == nil {
			return shape, invalid("Modify: the row type %v has no field for column %q", typ, shape.cols[i])
		}
	}
	return shape, nil
}

// setList is what the save writes: every column of v but the key and the
// version, from its field.
func (s rowShape) setList(v reflect.Value, key string) (map[string]any, error) {
	set := make(map[string]any, len(s.cols))
	for i, c := range s.cols {
		if c == key || c == s.cols[s.version] {
			continue
		}
		f := v.FieldByIndex(s.fields[i])
		if !f.CanInterface() {
			return nil, invalid("Modify: the field for column %q cannot be read (unexported)", c)
		}
		set[c] = f.Interface()
	}
	return set, nil
}

// readVersion is the version in vf, the field of the version column: any
// signed or unsigned integer kind. The save sets it to one more, so a
// field too narrow to hold that is refused before anything is written.
func readVersion(vf reflect.Value, column string) (int64, error) {
	var read int64
	var fits bool
	switch {
	case vf.CanInt():
		read = vf.Int()
		fits = read == math.MaxInt64 || !vf.OverflowInt(read+1) // MaxInt64: the server refuses the increment
	case vf.CanUint():
		u := vf.Uint()
		if u > math.MaxInt64 {
			return 0, invalid("Modify: the version %d in column %q is out of range", u, column)
		}
		read = int64(u)
		fits = u == math.MaxInt64 || !vf.OverflowUint(u+1)
	default:
		return 0, invalid("Modify: the version field for column %q is a %v, not an integer", column, vf.Type())
	}
	if !fits {
		return 0, invalid("Modify: the version field for column %q is a %v, which cannot hold the next version", column, vf.Type())
	}
	return read, nil
}

// columnFields returns, for each column, the index path of the field of the
// struct type typ that pgx.RowToStructByName scanned it into, by pgx's
// rules: exported fields; embedded structs flattened; a `db` tag names the
// column ("-" skips the field), matched exactly first, then ignoring case;
// an untagged field's name matches ignoring case and underscores; a later
// field wins over an earlier one. Modify reads the fields back through
// these paths to write the columns.
func columnFields(typ reflect.Type, cols []string) [][]int {
	paths := make([][]int, len(cols))
	var walk func(t reflect.Type, stack []int)
	walk = func(t reflect.Type, stack []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			path := append(slices.Clone(stack), i)
			switch {
			case sf.PkgPath != "" && !sf.Anonymous:
			case sf.Anonymous && sf.Type.Kind() == reflect.Struct:
				walk(sf.Type, path)
			default:
				if pos := fieldColumn(sf, cols); pos >= 0 {
					paths[pos] = path
				}
			}
		}
	}
	walk(typ, nil)
	return paths
}

// fieldColumn is the position in cols of the column a struct field is
// scanned from, or -1: by its `db` tag (the part before a comma; "-" skips
// the field), else by its name.
func fieldColumn(sf reflect.StructField, cols []string) int {
	tag, tagged := sf.Tag.Lookup("db")
	if !tagged {
		return columnPos(cols, sf.Name, true)
	}
	tag, _, _ = strings.Cut(tag, ",")
	if tag == "-" {
		return -1
	}
	return columnPos(cols, tag, false)
}

// columnPos is pgx's fieldPosByName.
func columnPos(cols []string, field string, normalize bool) int {
	if normalize {
		field = strings.ReplaceAll(field, "_", "")
	} else if i := slices.Index(cols, field); i >= 0 {
		return i
	}
	for i, c := range cols {
		if normalize {
			c = strings.ReplaceAll(c, "_", "")
		}
		if strings.EqualFold(c, field) {
			return i
		}
	}
	return -1
}
