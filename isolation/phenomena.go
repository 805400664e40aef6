package isolation

import "fmt"

// Phenomenon is a concurrency anomaly that an isolation level may or may not
// prevent. The zero value is not a phenomenon, so a field nobody set is not
// mistaken for [DirtyRead].
type Phenomenon int

// The phenomena [Level.Prevents] knows about. The first three are the ones
// the SQL standard defines its levels by; lost update, read skew and write
// skew are the ones that tell snapshot isolation apart from the weaker and
// the stronger levels; a serialization anomaly is anything no serial order
// of the transactions could have produced.
const (
	// DirtyRead: a transaction reads a row another transaction has written
	// but not committed.
	DirtyRead Phenomenon = iota + 1
	// NonRepeatableRead: a transaction reads a row twice and gets different
	// values, because another transaction updated it and committed between
	// the reads.
	NonRepeatableRead
	// PhantomRead: a transaction runs the same query twice and gets a
	// different set of rows, because another transaction inserted or
	// deleted a matching row and committed between the queries.
	PhantomRead
	// LostUpdate: two transactions read a value and both write back a new
	// value computed from what they read; one write overwrites the other.
	LostUpdate
	// ReadSkew: a transaction reads two related rows at different moments
	// and sees a combination that never existed, e.g. a sum that is off
	// because a transfer committed between the two reads.
	ReadSkew
	// WriteSkew: two transactions check the same condition, each sees it
	// hold, and each writes a different row; together the writes break the
	// condition.
	WriteSkew
	// SerializationAnomaly: the committed result of a set of transactions
	// matches no order of running them one at a time.
	SerializationAnomaly
)

var phenomenonNames = [...]string{
	DirtyRead:            "dirty read",
	NonRepeatableRead:    "non-repeatable read",
	PhantomRead:          "phantom read",
	LostUpdate:           "lost update",
	ReadSkew:             "read skew",
	WriteSkew:            "write skew",
	SerializationAnomaly: "serialization anomaly",
}

// weakestPreventing is the weakest level at which PostgreSQL prevents each
// phenomenon. PostgreSQL goes beyond the SQL standard here: its REPEATABLE
// READ is snapshot isolation, so phantoms, lost updates and read skew are
// already gone there, and it never shows uncommitted data at any level.
var weakestPreventing = [...]Level{
	DirtyRead:            ReadCommitted,
	NonRepeatableRead:    RepeatableRead,
	PhantomRead:          RepeatableRead,
	LostUpdate:           RepeatableRead,
	ReadSkew:             RepeatableRead,
	WriteSkew:            Serializable,
	SerializationAnomaly: Serializable,
}

// String returns the phenomenon's name in lower case ("write skew"), or
// "Phenomenon(N)" for a value outside the constants.
func (p Phenomenon) String() string {
	if !p.valid() {
		return fmt.Sprintf("Phenomenon(%d)", int(p))
	}
	return phenomenonNames[p]
}

func (p Phenomenon) valid() bool {
	return p >= DirtyRead && p <= SerializationAnomaly
}

// Phenomena returns every phenomenon, from the one prevented at the weakest
// level to the ones only Serializable prevents. The slice is new on each
// call, so the caller may change it.
func Phenomena() []Phenomenon {
	all := make([]Phenomenon, 0, SerializationAnomaly)
	for p := DirtyRead; p <= SerializationAnomaly; p++ {
		all = append(all, p)
	}
	return all
}

// Prevents reports whether PostgreSQL guarantees that p cannot happen in a
// transaction run at level l. The answers hold since PostgreSQL 9.1 made
// SERIALIZABLE truly serializable; the package's tests check each one
// against a real server. "Prevented" may mean the
// server refuses with a serialization failure (SQLSTATE 40001) instead, so a
// caller of a strong level must be ready to retry.
//
// Default is answered as ReadCommitted: it assumes the server's
// default_transaction_isolation was left at read committed. A Level or
// Phenomenon outside the declared constants prevents nothing.
func (l Level) Prevents(p Phenomenon) bool {
	if l.Validate() != nil || !p.valid() {
		return false
	}
	return l.rank() >= weakestPreventing[p].rank()
}
