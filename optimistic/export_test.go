package optimistic

import "reflect"

// ColumnFields gives the tests the column-to-field mapping Modify uses to
// read a row's fields back for the save.
func ColumnFields(typ reflect.Type, cols []string) [][]int { return columnFields(typ, cols) }
