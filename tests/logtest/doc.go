// Package logtest holds what tests of the slog observers share: a handler
// that signals when a given message is written, a buffer goroutines may
// log into while the test reads it, and a parser that reads
// the output of a slog.JSONHandler back as one record per line.
//
// Only tests import it.
package logtest
