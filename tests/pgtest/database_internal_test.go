package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestDatabaseURLIsFreshAndDroppedAtExit checks that each DatabaseURL is a
// database of its own, and that the functions Main runs when the tests end
// drop it.
func TestDatabaseURLIsFreshAndDroppedAtExit(t *testing.T) {
	ctx := context.Background()
	a, b := DatabaseURL(), DatabaseURL()
	nameA, nameB := currentDatabase(ctx, t, a), currentDatabase(ctx, t, b)
	if nameA == nameB {
		t.Fatalf("two calls gave the same database %s", nameA)
	}

	runAtExit()
	srv, err := SharedServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := Connect(t, srv.URL)
	var left int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname IN ($1, $2)", nameA, nameB).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d of the databases %s, %s outlived the tests", left, nameA, nameB)
	}
}

func currentDatabase(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var name string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
