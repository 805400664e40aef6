package optimistic_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/tests/pgtest"
)

// BenchmarkVersionedUpdate compares an uncontended versioned update through
// Table.Update, which also tells a conflict from a missing row in the same
// statement, with the bare compare-and-swap UPDATE written by hand, which
// cannot tell them apart. Run:
//
//	go test -run '^$' -bench VersionedUpdate -benchmem ./optimistic
func BenchmarkVersionedUpdate(b *testing.B) {
	var rt *pgtest.RoundTrips
	pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
	})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, stock int NOT NULL, version bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO items VALUES (1, 0, 0)"); err != nil {
		b.Fatal(err)
	}
	items := optimistic.Table{Name: pgx.Identifier{"items"}, Key: "id"}
	var version int64
	run := func(b *testing.B, op func() error) {
		if err := op(); err != nil { // prepare before counting
			b.Fatal(err)
		}
		rt.Reset()
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rt.Load())/float64(b.N), "roundtrips/op")
	}
	b.Run("txkit", func(b *testing.B) {
		run(b, func() error {
			v, err := items.Update(ctx, pool, 1, version, map[string]any{"stock": version})
			version = v
			return err
		})
	})
	b.Run("raw-pgx", func(b *testing.B) {
		run(b, func() error {
			tag, err := pool.Exec(ctx, "UPDATE items SET stock = $1, version = version + 1 WHERE id = $2 AND version = $3", version, 1, version)
			if err == nil && tag.RowsAffected() == 1 {
				version++
			}
			return err
		})
	})
}
