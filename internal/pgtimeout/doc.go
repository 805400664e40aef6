// Package pgtimeout turns Go durations into PostgreSQL timeout settings
// (statement_timeout, lock_timeout, idle_in_transaction_session_timeout).
//
// The server keeps these as int32 milliseconds, so the longest it accepts
// is [Max] (2147483647 ms, about 24.8 days). A longer value is refused with
// 22023 "invalid value for parameter". A bound that long bounds nothing a
// transaction or a lock wait can see, so a deadline beyond Max is treated as
// no bound at all: the caller leaves the server's setting as it is.
// Explicit option values beyond Max are refused by the packages that take
// them, with their own bad-input error (see [Check]).
package pgtimeout
