package txotel_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txotel"
)

type item struct {
	ID      int   `db:"id"`
	Stock   int   `db:"stock"`
	Version int64 `db:"version"`
}

func TestOptimisticConflictsAreCounted(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(`CREATE TABLE items (id int PRIMARY KEY, stock int NOT NULL, version bigint NOT NULL DEFAULT 0);
		INSERT INTO items (id, stock) VALUES (7, 10);`))
	tel := newTelemetry(t)
	items := optimistic.Table{Name: pgx.Identifier{"items"}, Key: "id"}
	interfere := 2
	_, err := optimistic.Modify(b.Ctx, b.Pool, items, 7, optimistic.ModifyOptions{Retry: fastRetry(5), OnConflict: tel.obs.OnConflict},
		func(it *item) error {
			if interfere > 0 {
				interfere--
				_, err := b.Pool.Exec(context.WithoutCancel(b.Ctx), "UPDATE items SET version = version + 1 WHERE id = 7")
				require.NoError(t, err)
			}
			it.Stock--
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{attrs(txotel.KeyOptimisticTable.String(`"items"`)): 2},
		sums(tel.collect(t)["txkit.optimistic.conflicts"]), "by table, never by key")
}
