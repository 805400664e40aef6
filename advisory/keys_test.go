package advisory_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
)

// goldenKeys were computed once, outside this package, from the documented
// definition: the first 8 bytes of SHA-256(name), big-endian, signed. They
// must never change: a changed key means two releases take different locks
// for the same name, and stop excluding each other during a rolling deploy.
var goldenKeys = []struct {
	name string
	key  int64
}{
	{"a", -3848465438864589366},
	{"nightly-billing", -3003901418071974465},
	{"migrations", -3058229681751119483},
	{"scheduler", -6905248152981328462},
	{"ключ", 2153681812738117024},
	{"🔒", 7701668758205862634},
	{"job:42", -2348953260144483386},
	{"A much longer lock name with spaces and punctuation!", -1836323162267815277},
}

var goldenPairs = []struct {
	namespace, name string
	hi, lo          int32
}{
	{"billing", "nightly", 211142636, 708534965},
	{"app", "scheduler", -1586311460, -1607753373},
}

func TestKeysAreStable(t *testing.T) {
	t.Parallel()
	for _, g := range goldenKeys {
		k, err := advisory.Key(g.name)
		require.NoError(t, err)
		require.Equal(t, g.key, k, "Key(%q) changed: this breaks every deployed user", g.name)
	}
	for _, g := range goldenPairs {
		hi, lo, err := advisory.PairKey(g.namespace, g.name)
		require.NoError(t, err)
		require.Equal(t, [2]int32{g.hi, g.lo}, [2]int32{hi, lo}, "PairKey(%q, %q) changed", g.namespace, g.name)
	}
}

// TestKeySQLMatches checks the documented SQL expressions against Key and
// PairKey on the server, so that operators can compute keys in psql.
func TestKeySQLMatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	names := []string{"x", "with 'quote'", "tab\there", "日本語の名前"}
	for _, g := range goldenKeys {
		names = append(names, g.name)
	}
	for i := range 50 {
		names = append(names, "generated-"+strconv.Itoa(i*7919))
	}
	for _, n := range names {
		var got int64
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT "+advisory.KeySQL, n).Scan(&got))
		want, err := advisory.Key(n)
		require.NoError(t, err)
		require.Equal(t, want, got, "KeySQL for %q", n)

		var hi, lo int32
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT
			('x' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 8))::bit(32)::int,
			('x' || left(encode(sha256(convert_to($2, 'UTF8')), 'hex'), 8))::bit(32)::int`, "ns", n).Scan(&hi, &lo))
		wantHi, wantLo, err := advisory.PairKey("ns", n)
		require.NoError(t, err)
		require.Equal(t, [2]int32{wantHi, wantLo}, [2]int32{hi, lo}, "pair SQL for %q", n)
	}
}

// refKey is the definition written the way the SQL form reads: hex digest,
// first 16 hex digits, as a signed 64-bit number.
func refKey(s string) int64 {
	sum := sha256.Sum256([]byte(s))
	u, err := strconv.ParseUint(hex.EncodeToString(sum[:])[:16], 16, 64)
	if err != nil {
		panic(err)
	}
	return int64(u)
}

// validName is what a name or namespace must be: non-empty valid UTF-8
// without a NUL byte, so that PostgreSQL text (and KeySQL) can hold it.
func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.Contains(s, "\x00")
}

func FuzzKey(f *testing.F) {
	for _, g := range goldenKeys {
		f.Add(g.name, "ns")
	}
	f.Add("", "")
	f.Add("\xff", "x")
	f.Add("x", "\x00")
	f.Add("a\x00b", "ns")
	f.Fuzz(func(t *testing.T, name, namespace string) {
		k, err := advisory.Key(name)
		if !validName(name) {
			require.ErrorIs(t, err, advisory.ErrInvalid)
			return
		}
		require.NoError(t, err)
		require.Equal(t, refKey(name), k)
		k2, _ := advisory.Key(name)
		require.Equal(t, k, k2, "deterministic")

		hi, lo, err := advisory.PairKey(namespace, name)
		if !validName(namespace) {
			require.ErrorIs(t, err, advisory.ErrInvalid)
			return
		}
		require.NoError(t, err)
		require.Equal(t, int32(refKey(namespace)>>32), hi, "each half is the top of that string's Key")
		require.Equal(t, int32(k>>32), lo)
	})
}

// TestKeysDoNotCollideWhereCRC32Does hashes 200,000 names of the kind
// users make from data (an id per customer or job). A 32-bit mapping such
// as CRC32 is expected to give about 4.7 collisions among them; 64-bit keys
// about 10⁻⁹. The input is fixed, so the outcome is too.
func TestKeysDoNotCollideWhereCRC32Does(t *testing.T) {
	t.Parallel()
	const n = 200_000
	keys := make(map[int64]struct{}, n)
	crcs := make(map[uint32]struct{}, n)
	crcCollisions := 0
	for i := range n {
		name := fmt.Sprintf("customer-%016x", splitmix64(uint64(i)))
		k, err := advisory.Key(name)
		require.NoError(t, err)
		_, dup := keys[k]
		require.False(t, dup, "64-bit key collision at %q", name)
		keys[k] = struct{}{}
		c := crc32.ChecksumIEEE([]byte(name))
		if _, dup := crcs[c]; dup {
			crcCollisions++
		}
		crcs[c] = struct{}{}
	}
	t.Logf("%d names: CRC32 collisions %d, Key collisions 0", n, crcCollisions)
	require.Positive(t, crcCollisions, "the comparison shows what 32 bits cost")
}

// splitmix64 spreads sequential numbers over 64 bits, like the ids of a
// real table. (Sequential names of one length never collide under CRC32,
// which is linear: it would flatter it.)
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
