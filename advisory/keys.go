package advisory

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/txkit/txkit/internal/ident"
	"github.com/txkit/txkit/internal/invalid"
)

// Key returns the bigint key that the lock called name lives under on the
// server: the first 8 bytes of the SHA-256 digest of name's UTF-8 bytes,
// read as a big-endian two's-complement int64. This mapping is part of the
// package's compatibility promise and will never change: processes built
// from different releases of this module, or written in other languages,
// agree on every key.
//
// The same key can be computed in SQL (PostgreSQL 11 or later), for
// example to find a lock in pg_locks or to take it from a psql session:
//
//	('x' || left(encode(sha256(convert_to(name, 'UTF8')), 'hex'), 16))::bit(64)::bigint
//
// See [KeySQL]. With 64 bits, two different names share a key with
// probability about n²/2⁶⁵ for n names: about one in 37 million for a
// million names. (Mappings onto 32 bits, such as CRC32, reach even odds at
// about 77,000 names.)
//
// name must be non-empty valid UTF-8 without a NUL byte (PostgreSQL text
// cannot hold anything else, so the SQL form could not reproduce the key);
// otherwise Key returns an error matching [ErrInvalid]. The same holds
// for every name and namespace the package takes.
func Key(name string) (int64, error) {
	if err := checkName("name", name); err != nil {
		return 0, err
	}
	return hash64(name), nil
}

// PairKey returns the (int32, int32) key of name in namespace, for the
// two-argument forms of PostgreSQL's advisory lock functions. Each half is
// the high 32 bits of [Key] of that string: the same namespace gives the
// same first half whatever the name, so operators can pick out a
// namespace's locks in pg_locks (classid holds the namespace half, objid
// the name half, objsubid is 2). The SQL form is
//
//	(('x' || left(encode(sha256(convert_to(namespace, 'UTF8')), 'hex'), 8))::bit(32)::int,
//	 ('x' || left(encode(sha256(convert_to(name,      'UTF8')), 'hex'), 8))::bit(32)::int)
//
// PostgreSQL keeps the pair form and the bigint form apart (objsubid 2 and
// 1), so a pair key never collides with a bigint key. Within a namespace
// the name half has only 32 bits: two names share a key with probability
// about n²/2³³, even odds at about 77,000 names. Use the pair form for a
// modest, known set of names; use plain names (the bigint form) for names
// made from data, such as one lock per customer.
func PairKey(namespace, name string) (int32, int32, error) {
	if err := checkName("namespace", namespace); err != nil {
		return 0, 0, err
	}
	if err := checkName("name", name); err != nil {
		return 0, 0, err
	}
	return hash32(namespace), hash32(name), nil
}

// KeySQL is the SQL expression of [Key] for a text value given as $1.
const KeySQL = `('x' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 16))::bit(64)::bigint`

func hash64(s string) int64 {
	sum := sha256.Sum256([]byte(s))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

func hash32(s string) int32 {
	return int32(hash64(s) >> 32)
}

func checkName(what, s string) error {
	switch {
	case s == "":
		return invalid.Errorf(ErrInvalid, "the %s is empty", what)
	case !utf8.ValidString(s):
		return invalid.Errorf(ErrInvalid, "the %s is not valid UTF-8: %s", what, ident.Show(s))
	case strings.IndexByte(s, 0) >= 0:
		// Valid UTF-8, but PostgreSQL text cannot hold it, so KeySQL
		// could not compute its key.
		return invalid.Errorf(ErrInvalid, "the %s holds a NUL byte: %s", what, ident.Show(s))
	}
	return nil
}

// key is where a lock lives on the server: one bigint, or a pair of int4s.
type key struct {
	pair bool
	id   int64 // bigint form
	hi   int32 // pair form: the namespace half
	lo   int32 // pair form: the name half
}

func makeKey(namespace, name string) (key, error) {
	if namespace == "" {
		id, err := Key(name)
		return key{id: id}, err
	}
	hi, lo, err := PairKey(namespace, name)
	return key{pair: true, hi: hi, lo: lo}, err
}

// args is the key's parameter values, for keySQL's text.
func (k key) args() []any {
	if !k.pair {
		return []any{k.id}
	}
	return []any{k.hi, k.lo}
}

// params is the key's SQL text for parameters numbered from first on, and
// their values.
func (k key) params(first int) (string, []any) {
	n := strconv.Itoa(first)
	if !k.pair {
		return "$" + n + "::int8", []any{k.id}
	}
	return "$" + n + "::int4, $" + strconv.Itoa(first+1) + "::int4", []any{k.hi, k.lo}
}

// locks returns the key as pg_locks shows it: classid, objid, objsubid.
func (k key) locks() (classid, objid uint32, objsubid int16) {
	if !k.pair {
		return uint32(uint64(k.id) >> 32), uint32(k.id), 1
	}
	return uint32(k.hi), uint32(k.lo), 2
}

// fenceKey is the key's row in the fence table: (form, key), with form as
// pg_locks' objsubid.
func (k key) fenceKey() (form int16, id int64) {
	if !k.pair {
		return 1, k.id
	}
	return 2, int64(uint64(uint32(k.hi))<<32 | uint64(uint32(k.lo)))
}

func (k key) String() string {
	if !k.pair {
		return strconv.FormatInt(k.id, 10)
	}
	return "(" + strconv.FormatInt(int64(k.hi), 10) + "," + strconv.FormatInt(int64(k.lo), 10) + ")"
}
