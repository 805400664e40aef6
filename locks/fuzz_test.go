package locks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/txkit/txkit/locks"
)

// FuzzApply checks the SQL that Apply builds: it never panics, an accepted
// query comes back with the clause, and the scanner recognizes its own
// clause, so applying twice is always refused.
func FuzzApply(f *testing.F) {
	for _, q := range []string{
		"SELECT 1", "select * from t where a = $1", "SELECT 'x FOR UPDATE; y'", "SELECT $q$;$q$",
		"SELECT 1 -- c", "SELECT 1 /* a /* b */ */", `SELECT "a""b" FROM "t;"`, "(SELECT 1)",
		"WITH x AS (SELECT 1) SELECT * FROM x", "SELECT 1; DROP TABLE t", "SELECT 1 FOR SHARE", "E'\\''",
	} {
		f.Add(q)
	}
	o := locks.Options{Strength: locks.ForNoKeyUpdate, Wait: locks.SkipLocked, Of: []string{`we"ird; name`}}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := o.Apply(q)
		if err != nil {
			return
		}
		if !strings.Contains(out, o.String()) {
			t.Fatalf("Apply(%q) = %q: no %q in it", q, out, o.String())
		}
		if _, err := o.Apply(out); !errors.Is(err, locks.ErrHasLockingClause) {
			t.Fatalf("Apply(%q) = %q, and applying again gave %v, want ErrHasLockingClause", q, out, err)
		}
	})
}
