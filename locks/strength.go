package locks

import "fmt"

// Strength is the row-level lock a locking read takes. The zero value is
// ForUpdate, the strongest, because a caller who did not choose wants the
// row to stay as read until commit, whatever the other side does.
//
// Which strengths conflict (PostgreSQL's table, abridged): ForUpdate
// conflicts with all four; ForNoKeyUpdate with all but ForKeyShare;
// ForShare with ForUpdate and ForNoKeyUpdate; ForKeyShare only with
// ForUpdate. A plain UPDATE that does not change a key column takes
// ForNoKeyUpdate; DELETE and key changes take ForUpdate; a foreign-key check
// takes ForKeyShare on the referenced row.
type Strength int

// The four row lock strengths, strongest first.
const (
	// ForUpdate locks the row against every other lock, UPDATE and
	// DELETE: the row will be changed or deleted.
	ForUpdate Strength = iota
	// ForNoKeyUpdate is ForUpdate that still lets other transactions
	// insert rows referencing this one (foreign keys): the row will be
	// updated, but not its key. Prefer it to ForUpdate for that case.
	ForNoKeyUpdate
	// ForShare lets others read-lock the row too, but not change it.
	ForShare
	// ForKeyShare only keeps the row from being deleted or having its key
	// changed.
	ForKeyShare
)

// String returns the clause as PostgreSQL spells it, such as "FOR UPDATE".
func (s Strength) String() string {
	switch s {
	case ForUpdate:
		return "FOR UPDATE"
	case ForNoKeyUpdate:
		return "FOR NO KEY UPDATE"
	case ForShare:
		return "FOR SHARE"
	case ForKeyShare:
		return "FOR KEY SHARE"
	}
	return fmt.Sprintf("Strength(%d)", int(s))
}

// validate returns an error matching [ErrInvalid] if s is not one of the
// four strengths.
func (s Strength) validate() error {
	if s < ForUpdate || s > ForKeyShare {
		return invalid("unknown lock strength %d", int(s))
	}
	return nil
}

// WaitPolicy says what a locking read does when a row is locked by another
// transaction. The zero value, Wait, waits.
type WaitPolicy int

// The three wait policies.
const (
	// Wait waits for the other transaction to end, bounded by
	// lock_timeout (see [Options.LockTimeout]) and statement_timeout.
	Wait WaitPolicy = iota
	// NoWait fails at once with [ErrLockNotAvailable].
	NoWait
	// SkipLocked leaves locked rows out of the result: the building block
	// of work queues (see [Queue]), never of a consistent read.
	SkipLocked
)

// String returns "NOWAIT" or "SKIP LOCKED" as PostgreSQL spells them, and
// "WAIT" for Wait, which has no keyword: a clause without one waits.
func (w WaitPolicy) String() string {
	switch w {
	case Wait:
		return "WAIT"
	case NoWait:
		return "NOWAIT"
	case SkipLocked:
		return "SKIP LOCKED"
	}
	return fmt.Sprintf("WaitPolicy(%d)", int(w))
}

// validate returns an error matching [ErrInvalid] if w is not one of the
// three policies.
func (w WaitPolicy) validate() error {
	if w < Wait || w > SkipLocked {
		return invalid("unknown wait policy %d", int(w))
	}
	return nil
}
