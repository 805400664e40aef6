// Package logkeys holds the log/slog attribute keys and message prefixes
// that every txkit slog observer uses, so that one query over the logs
// finds a transaction, a lock or an error the same way in every package.
//
// A message starts with the package name and a colon ("txn: retrying
// transaction", "advisory: lock lost"). The thing an event is about is
// always under [Name], whatever kind of thing it is; an error is always
// under [Error], as its text. Keys are lower case, one word where one word
// says it, snake_case otherwise.
//
// No key ever carries a connection string or a password: observers are
// given names, durations, counts and errors, and pgx's errors do not carry
// the password.
package logkeys

import "log/slog"

// Keys shared by the slog observers of txn and advisory.
const (
	Name      = "name"      // the transaction's Options.Name, the lock's name
	Error     = "error"     // the error's text; absent when there is none
	Attempt   = "attempt"   // which attempt, from 1
	Attempts  = "attempts"  // how many attempts ran
	Duration  = "duration"  // how long the whole thing took
	Wait      = "wait"      // time spent waiting: backoff, or for a lock
	Held      = "held"      // how long a lock was held
	Open      = "open"      // how long a transaction has been open
	Outcome   = "outcome"   // how a transaction ended: committed, rolled back, commit unknown
	SQLState  = "sqlstate"  // the server's error code
	XID       = "xid"       // a transaction id
	Status    = "status"    // what pg_xact_status said
	Stack     = "stack"     // where the thing was started or acquired
	Panic     = "panic"     // a recovered panic value
	Kind      = "kind"      // which sort of lock: session or transaction
	Shared    = "shared"    // a shared lock
	Namespace = "namespace" // a lock's namespace
	Token     = "token"     // a fencing token
	PID       = "pid"       // the server backend's process id
	Discarded = "discarded" // the connection was closed rather than reused
	Term      = "term"      // a leadership's fencing token
	Lost      = "lost"      // a lock or a leadership was lost
)

// Message prefixes: every message a package logs starts with one.
const (
	TxnPrefix      = "txn: "
	AdvisoryPrefix = "advisory: "
)

// Err returns err's text under [Error], or an empty attribute (which
// slog drops) when err is nil.
func Err(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String(Error, err.Error())
}
