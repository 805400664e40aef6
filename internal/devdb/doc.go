// Package devdb starts a throwaway PostgreSQL cluster from the server
// binaries installed on this machine (initdb and postgres, found on PATH,
// in `pg_config --bindir` or under /usr/lib/postgresql/*/bin), for example
// programs run without a database of their own and for the test harness.
//
//	c, err := devdb.Start(ctx)
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	pool, err := pgxpool.New(ctx, c.URL())
//
// The cluster lives in a temporary directory, listens on a free loopback
// port, trusts the "postgres" user and runs with durability turned off; Close
// stops it and removes its files. PostgreSQL refuses to run as root, so
// when this process is root the server runs as the "postgres" user. On
// Linux the server exits if this process dies without stopping it.
//
// [StartReplicated] starts a primary with streaming replicas: hot
// standbys taken with pg_basebackup -R, each in a directory of its own on
// a port of its own. [Cluster.Promote] ends a standby's recovery,
// [Cluster.Follow] points a node at a new primary, and [WaitReplayed]
// waits until a replica has replayed everything committed on the primary.
// Replication lag a test needs can be made with a replica setting
// (recovery_min_apply_delay) or with pg_wal_replay_pause() on the replica.
//
// devdb needs neither Docker nor the testing package, so a program that
// uses it links neither.
package devdb
