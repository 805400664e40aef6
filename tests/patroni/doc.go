// Package patroni runs a Patroni cluster on 127.0.0.1 for failover tests:
// PostgreSQL nodes from the local server binaries, managed by Patroni with
// its Raft DCS (pysyncobj, no etcd), so that a test can crash or stop the
// leader and watch Patroni elect and promote another node.
//
//	c := patroni.Start(t, patroni.Options{})   // two nodes and a Raft witness
//	leader, err := c.WaitLeader(ctx)
//	leader.Kill()                              // SIGKILL Patroni and PostgreSQL
//	next, err := c.WaitLeader(ctx)             // about TTL seconds later
//
// Tests that need Patroni are skipped when it (packages patroni and
// python3-pysyncobj) or the server binaries are missing, unless
// TXKIT_REQUIRE_PATRONI=1 is set (as CI does, after .ci/patroni.sh
// installed it), in which case they fail. The package runs on Linux only.
package patroni
