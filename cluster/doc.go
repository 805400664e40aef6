// Package cluster runs txkit on a primary and its streaming replicas:
// read-only transactions go to a replica that is fresh enough, writes go to
// whichever node is the primary now, and a failover costs a retry, not an
// outage. It routes around PostgreSQL's replication (and a failover
// manager such as Patroni); it does not replicate anything itself.
//
//	c, err := cluster.Open(ctx, []string{primaryDSN, replicaDSN}, cluster.Options{})
//	if err != nil { ... }
//	defer c.Close(shutdownCtx)
//	err = txn.WithTx(ctx, c, txn.Options{}, write)               // on the primary
//	err = txn.WithTx(ctx, c, txn.Options{ReadOnly: true}, read)  // on a replica
//
// # Routing
//
// A [Cluster] is a txn.Router: WithTx asks it for each attempt's
// connection and begins, commits and settles a lost COMMIT on that
// connection itself, exactly as on a *pgxpool.Pool, so ErrCommitUnknown
// means what it means there. Read-write and unmarked transactions run on
// the primary; ReadOnly ones on a healthy replica within the lag bound,
// spread over the replicas that qualify, and on the primary when none does
// (Options.Reads: ReplicasOrPrimary, the default; ReplicasOnly fails them
// with [ErrNoReplica]; PrimaryOnly sends everything to the primary). A
// hot standby refuses SERIALIZABLE: a ReadOnly transaction with Isolation
// Serializable runs on the primary (under ReplicasOnly it fails with
// ErrNoReplica); a read on a replica takes RepeatableRead. Likewise a
// replica whose sessions default to SERIALIZABLE
// (default_transaction_isolation; [NodeStats].SerializableDefault) takes
// only reads that set a lower Isolation: reads at the default level go
// elsewhere. A write in a
// ReadOnly transaction gets the server's 25006 and is not run again. The
// node is chosen from the checker's last findings: routing sends nothing
// to the server, so a transaction costs the round trips it costs on a
// pool (BEGIN, its statements, COMMIT).
//
// Everything else runs on the primary: txn.Q(ctx, c) outside a
// transaction, c.Exec and the other Querier methods, and [Cluster.Primary],
// which returns the primary's [pool.Pool] for advisory locks and code that
// needs a pool: advisory.Acquire(ctx, p.Pgx(), ...). locks.Queue's Claim
// takes the Cluster itself: its transaction is read-write, so it runs on
// the primary (keep its Tx options' ReadOnly off). Session advisory locks
// live on one server; after a failover they are gone with it, which the
// advisory package reports as a lost lock.
//
// # The checker
//
// Every CheckInterval (1 s) the Cluster asks every node, on a connection
// of its own (so a full pool never makes a node look dead), whether it is
// in recovery, and its WAL position: pg_current_wal_insert_lsn() on the
// primary, pg_last_wal_replay_lsn() on a replica, in one statement, all
// nodes at once, within CheckTimeout (1 s). One second rather than
// go-hasql's five: a dead node leaves routing within CheckInterval +
// CheckTimeout, and the staleness bound below is only as tight as the
// checks are frequent; a check is one cheap query per node per second.
// A node that refuses a new connection leaves routing at once, and a
// connection that breaks during a transaction makes a check run at once,
// without waiting for the tick. A node returns to routing when a check
// finds it healthy. [Cluster.Nodes] shows what is
// known of each node.
//
// # The lag bound
//
// A replica takes reads only while its staleness is within MaxLag (5 s),
// and, if MaxLagBytes is set, while it was no more than that many bytes of
// WAL behind the primary at the last check. Staleness is bounded soundly
// rather than estimated: the checker keeps the primary's insert positions
// with the (monotonic, client-side) time each question was sent. Every
// transaction committed before that time is at or before that position, so
// a replica that has replayed it has every such commit, and its staleness
// now is at most now minus that time. The bound is the latest such sample
// the replica has replayed; it grows between checks, so a replica that
// stops replaying leaves routing as soon as the bound passes MaxLag, even
// before the next check. Unlike now() - pg_last_xact_replay_timestamp(),
// it does not grow while the primary is idle: an idle primary's position
// does not move, the replica has replayed it, and the bound is the time
// since the last check. (A primary position just past a WAL page header,
// as after a switch to a new segment, counts as the page boundary, where
// a replica that replayed everything stops: no record lies in between.) While no primary position is known (no primary
// found yet, or a new one not yet sampled), the commit time of the last
// transaction the replica replayed is used instead: that overstates the
// lag when the primary is idle and trusts the hosts' clocks to agree.
//
// # Read your writes
//
// A [Session] carried in ctx ([WithSession]) makes reads see the caller's
// own writes. When a read-write transaction with a Session in ctx commits,
// the Session records the commit's WAL position: WithTx reads the
// primary's insert position with a fast-path call sent in the same write
// as COMMIT, after it, so it costs no round trip and is at or past the
// commit record. (When COMMIT's answer is lost and the commit is settled
// by asking the server, the position's answer is lost with it: the Session
// then takes the primary's insert position, one query, or if even that
// fails, [UnknownPosition], so its reads go to the primary, without
// waiting for a replica, until its next write: see [Session.Unknown].)
// A read-only transaction with the Session runs only on a
// replica that has replayed that position: one the checker already knows
// to be past it, else the replica furthest ahead, asked for its replay
// position every 2 ms for up to SessionWait (50 ms); else on the primary
// (or, under ReplicasOnly, it fails with ErrNoReplica). [Session.Token]
// and [ResumeSession] carry a Session between requests as a string (a
// cookie or a header); a malformed token is refused with ErrInvalid.
// A token is not signed: one forged or corrupted that still parses only
// changes where its own Session's reads go. A position no replica has
// replayed (forged, from another cluster, or written on a primary that
// failed before its replicas received it) sends them to the primary
// after SessionWait (under ReplicasOnly: ErrNoReplica) until the primary's
// WAL passes it, which may be never for a forged one; sign the token if
// clients must not be able to do that. A token only means something to
// the cluster that made it.
//
// # Failover
//
// When the primary fails, its connections break. A transaction whose
// connection broke before COMMIT is run again by WithTx, as on a pool; a
// node that refuses a connection leaves routing and a check runs at once;
// a write refused with 25006 (read_only_sql_transaction) by a node that
// answers, on that connection, that it is in recovery (it is now a
// standby) takes the node out of routing and is run again; a 25006 from a
// node not in recovery (fn set its transaction READ ONLY) is fn's error. The new
// attempt waits, up to PrimaryWait (10 s) and ctx, for the checker to find
// a primary, then runs there. A COMMIT whose answer was lost is settled as
// on a pool: by asking the server, and when that server is gone, with
// ErrCommitUnknown; it is never run again blindly. When two nodes both
// claim to be primary, writes never split between them: a promotion starts
// a later timeline, and a node writing on a timeline earlier than one the
// Cluster has seen (a former primary started again without being rewound)
// takes no writes, also while the promoted node is down (writes then wait
// PrimaryWait and fail with ErrNoPrimary); [NodeStats].Err says so. Among
// primaries on the same timeline, writes go to the one most recently seen
// turning primary. A Cluster remembers the latest timeline until Close:
// after rebuilding the servers from scratch (initdb), open a new one.
//
// After the primary changes, the old primary's positions are forgotten and
// every replica gets no reads until it is seen streaming (a WAL receiver
// running) and replaying WAL past where it was ([NodeStats].AwaitingPrimary):
// a replica that had received more of the old primary's WAL than the
// promoted node is numerically ahead of the new primary's positions while
// it lacks the new commits, and one still pointed at the old primary
// never catches up. A replica re-pointed at the new primary (by Patroni,
// or by hand) serves reads again after the new primary's next write. A
// replica seen streaming an earlier timeline than the primary's follows a
// former primary (one started again without a rewind) and gets no reads
// however far it replays, also in a Cluster opened after the failover;
// seeing a replica's timeline takes the pg_read_all_stats role (or
// superuser) for the checker's user, without which only the rule above
// applies.
//
// # Defaults
//
//	Option         Zero value means
//	Pool           pool.Options{} for each node (Open only)
//	CheckInterval  1 s
//	CheckTimeout   1 s
//	MaxLag         5 s
//	MaxLagBytes    no bound in bytes
//	Reads          ReplicasOrPrimary
//	SessionWait    50 ms
//	PrimaryWait    10 s
//	Logger         discard; node changes are logged, never a DSN or password
//
// Negative durations and byte counts are refused with ErrInvalid.
//
// # Nodes
//
// [Open] takes one DSN per node, or one DSN in libpq's multi-host form
// (postgres://app@db1:5432,db2:5432/app, or host=db1,db2 port=5432 in
// keyword form), which is one node per host with every other setting kept
// and target_session_attrs set to any;
// [New] takes pools opened with [pool.Open]. The roles come from the
// servers, not from the order.
package cluster
