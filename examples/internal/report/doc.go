// Package report prints the summary the example programs end with: an
// aligned table of figures, then one line per invariant check.
package report
