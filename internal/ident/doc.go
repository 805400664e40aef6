// Package ident validates and quotes the table and column names that
// txkit's helpers put into SQL. Names are always quoted with
// pgx.Identifier, never spliced; this package refuses the few names that
// quoting cannot carry faithfully.
package ident
