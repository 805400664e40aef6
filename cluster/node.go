package cluster

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/pool"
)

// Role is what the checker found a node to be.
type Role int

const (
	Unknown Role = iota // not checked yet, or not answering
	Primary             // not in recovery: takes writes
	Replica             // in recovery (a hot standby): takes reads
)

func (r Role) String() string {
	switch r {
	case Unknown:
		return "unknown"
	case Primary:
		return "primary"
	case Replica:
		return "replica"
	}
	return "Role(" + itoa(int64(r)) + ")"
}

// NodeStats is what the Cluster knows of one node.
type NodeStats struct {
	Name    string // host:port; never a password
	Role    Role   // as of CheckedAt
	Healthy bool   // answered the last check, and no failure seen since
	// Routable says whether the node takes work now: the primary for
	// writes, a replica for reads (healthy and within the lag bound).
	Routable bool
	Err      string        // why it is not healthy (or, a former primary, not routable); no password in it
	Position Position      // primary: WAL insert position; replica: replayed position
	LagBytes int64         // replica: WAL behind the primary as of the check
	Lag      time.Duration // replica: the staleness bound now (see the package documentation)
	// AwaitingPrimary is set on a replica after the primary changed, until
	// it is seen streaming and replaying past where it was: until then it
	// may be on the old primary's timeline, and gets no reads. It is set
	// too, for as long as it lasts, on a replica seen streaming an earlier
	// timeline than the primary's (following a former primary).
	AwaitingPrimary bool
	// SerializableDefault is set when the node's sessions default to
	// SERIALIZABLE: a hot standby refuses that, so as a replica it takes
	// only reads that set a lower Isolation.
	SerializableDefault bool
	CheckedAt           time.Time
	Reads, Writes       int64 // transactions committed on it through the Cluster
}

// node is one server: its pool, the checker's connection to it, and what
// the checker last found.
type node struct {
	name string
	pool *pool.Pool
	own  bool // Close closes pool
	cfg  *pgx.ConnConfig
	pass string

	check *pgx.Conn // the checker's own connection; only the checker uses it

	replay atomic.Uint64 // highest replayed position known (replicas)
	// serializableDefault: the node's sessions default to SERIALIZABLE
	// (default_transaction_isolation), as read by the checker.
	serializableDefault atomic.Bool
	reads, writes       atomic.Int64

	// under Cluster.mu
	st state
}

type state struct {
	role      Role
	healthy   bool
	err       string
	pos       Position
	lagBytes  int64
	freshAsOf time.Time // a replica has every commit made before this
	checkedAt time.Time
	promoted  int64 // Cluster.seq when seen turning primary
	timeline  int64 // a primary's timeline
	// former is set on a node that claims to be primary on a timeline
	// earlier than one already seen: a former primary back without being
	// rewound. It takes no writes.
	former bool
	// held is set when the primary changed: the node gets no reads until
	// it streams and has replayed past heldAt.
	held   bool
	heldAt Position
}

func newNode(p *pool.Pool, own bool) *node {
	cfg := p.Pgx().Config().ConnConfig.Copy()
	name := "?"
	if h := p.Config().Hosts; len(h) > 0 {
		name = h[0]
	}
	return &node{name: name, pool: p, own: own, cfg: cfg, pass: cfg.Password}
}

// checkSQL reads a node's role and position in one statement: the WAL
// insert position on a primary (everything committed before it was read
// is at or before it), the replayed position on a standby.
// On a standby it also reads how long ago, by the standby's clock, the
// last transaction it replayed committed on the primary: a bound used only
// when no primary position is known (see history); and whether it has a
// WAL receiver running (the view shows a running receiver's row to every
// user). On a primary it also reads the timeline it writes on (the first
// eight hex digits of the current WAL file's name): a promotion starts a
// later one.
const checkSQL = `SELECT pg_is_in_recovery(),
	(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END)::text,
	extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
	pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver),
	CASE WHEN pg_is_in_recovery() THEN 0
		ELSE ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::bigint END,
	current_setting('wal_block_size')::bigint,
	(SELECT received_tli FROM pg_stat_wal_receiver)::bigint`

type probe struct {
	role Role
	pos  Position
	sent time.Time // when the question left: the primary had this position no earlier
	// replayedAt is, for a standby, when the last transaction it replayed
	// committed, by the hosts' clocks; zero if unknown.
	replayedAt time.Time
	streaming  bool  // a standby with its WAL receiver running
	timeline   int64 // a primary's timeline; 0 on a standby
	walBlock   int64 // the server's WAL page size (wal_block_size)
	// receivedTLI is the timeline a standby's WAL receiver streams; 0 when
	// it runs none, or the checker's role may not see it (it needs
	// pg_read_all_stats).
	receivedTLI int64
	err         error
}

func (n *node) probe(ctx context.Context) probe {
	p := probe{sent: time.Now()}
	if n.check == nil || n.check.IsClosed() {
		conn, err := pgx.ConnectConfig(ctx, n.cfg)
		if err != nil {
			p.err = err
			return p
		}
		n.check = conn
		if err := n.readDefaultIsolation(ctx); err != nil {
			n.closeCheckConn()
			p.err = err
			return p
		}
	}
	p.sent = time.Now()
	var recovery bool
	var lsn *string
	var age *float64
	var tli *int64
	if err := n.check.QueryRow(ctx, checkSQL).Scan(&recovery, &lsn, &age, &p.streaming, &p.timeline, &p.walBlock, &tli); err != nil {
		n.closeCheckConn()
		p.err = err
		return p
	}
	if tli != nil {
		p.receivedTLI = *tli
	}
	p.role = Primary
	if recovery {
		p.role = Replica
		if age != nil {
			p.replayedAt = p.sent.Add(-time.Duration(*age * float64(time.Second)))
		}
	}
	if lsn != nil {
		pos, err := ParsePosition(*lsn)
		if err != nil {
			p.err = err
			return p
		}
		p.pos = pos
	}
	return p
}

// readDefaultIsolation reads, on a new check connection, the isolation
// level the node's sessions default to. On a hot standby, a session whose
// default is SERIALIZABLE fails every statement that takes a snapshot
// (0A000): such a replica takes only reads that ask for a lower level, and
// the checker's own session is moved to REPEATABLE READ so that its check
// works. SHOW takes no snapshot.
func (n *node) readDefaultIsolation(ctx context.Context) error {
	var iso string
	if err := n.check.QueryRow(ctx, "SHOW default_transaction_isolation").Scan(&iso); err != nil {
		return err
	}
	serializable := iso == "serializable"
	n.serializableDefault.Store(serializable)
	if serializable {
		if _, err := n.check.Exec(ctx, "SET default_transaction_isolation = 'repeatable read'"); err != nil {
			return err
		}
	}
	return nil
}

func (n *node) closeCheckConn() {
	if n.check == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.check.Close(ctx)
	n.check = nil
}

// describe is err's text with no secret in it: pgconn's connect error
// carries the configuration, and a server's message may quote the DSN.
func (n *node) describe(err error) string {
	var ce *pgconn.ConnectError
	s := err.Error()
	if errors.As(err, &ce) {
		if cause := ce.Unwrap(); cause != nil {
			s = "connecting: " + cause.Error()
		}
	}
	if n.pass != "" {
		s = strings.ReplaceAll(s, n.pass, "xxxxx")
	}
	return s
}
