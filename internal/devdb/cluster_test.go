package devdb

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestStartRestartClose starts a cluster with a setting of its own,
// restarts it on the same port with the setting still in force, and
// checks that Close removes its files.
func TestStartRestartClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, "max_connections=42")
	if err != nil {
		t.Fatalf("the local server binaries must work on this machine: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	port := c.Port()
	if got := maxConnections(ctx, t, c.URL()); got != "42" {
		t.Fatalf("max_connections = %s, want the 42 given to Start", got)
	}

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Fatalf("Restart moved the server from port %d to %d", port, c.Port())
	}
	if got := maxConnections(ctx, t, c.URL()); got != "42" {
		t.Fatalf("after Restart max_connections = %s, want 42", got)
	}

	dir := c.sockDir
	closed = true
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close left %s behind (stat: %v)", dir, err)
	}
	if _, err := pgx.Connect(ctx, c.URL()); err == nil {
		t.Fatal("the server still accepts connections after Close")
	}
}

func maxConnections(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var v string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
