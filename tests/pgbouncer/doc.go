// Package pgbouncer runs PgBouncer in front of a test database, so that
// tests can check what works through a pooler in transaction mode (the
// usual production setting) and what is refused.
//
//	url := pgbouncer.Start(t, pgtest.NewDatabase(t), pgbouncer.Transaction)
//	pool := pgbouncer.Pool(t, url)
//
// Tests that need PgBouncer are skipped when the pgbouncer binary is not
// installed, unless TXKIT_REQUIRE_PGBOUNCER=1 is set (as CI does, after
// .ci/pgbouncer.sh installed it), in which case they fail.
package pgbouncer
