package cluster

import (
	"log/slog"
	"time"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/pool"
)

// Reads says where read-only work goes when no replica may take it.
type Reads int

const (
	// ReplicasOrPrimary sends read-only work to the primary when no
	// replica is healthy, within the lag bound and (for a Session) caught
	// up. The default.
	ReplicasOrPrimary Reads = iota
	// ReplicasOnly fails such work with ErrNoReplica, to keep reads off
	// the primary.
	ReplicasOnly
	// PrimaryOnly sends all work to the primary: replicas are checked but
	// serve nothing.
	PrimaryOnly
)

func (r Reads) String() string {
	switch r {
	case ReplicasOrPrimary:
		return "replicas or primary"
	case ReplicasOnly:
		return "replicas only"
	case PrimaryOnly:
		return "primary only"
	}
	return "Reads(" + itoa(int64(r)) + ")"
}

// Defaults of Options' zero values.
const (
	DefaultCheckInterval = time.Second
	DefaultCheckTimeout  = time.Second
	DefaultMaxLag        = 5 * time.Second
	DefaultSessionWait   = 50 * time.Millisecond
	DefaultPrimaryWait   = 10 * time.Second
)

// Options configure a Cluster. The zero value of each field is the
// documented default.
type Options struct {
	// Pool configures each node's pool (Open only; New takes pools as
	// they are).
	Pool pool.Options
	// CheckInterval is how often each node's role and position are read:
	// 0 means 1 s. A dead node leaves routing within CheckInterval +
	// CheckTimeout, sooner when a transaction sees its connection fail.
	CheckInterval time.Duration
	// CheckTimeout bounds one round of checks: 0 means 1 s. A node that
	// does not answer in time is taken out of routing until it does.
	CheckTimeout time.Duration
	// MaxLag bounds how stale a replica may be and still take reads: 0
	// means 5 s. The bound is sound: it counts the time since the check
	// that measured the replica (see the package documentation).
	MaxLag time.Duration
	// MaxLagBytes, if positive, also bounds how much WAL a replica may be
	// behind the primary, as of the last check. 0: no bound in bytes.
	MaxLagBytes int64
	// Reads says where read-only work goes when no replica may take it.
	// The zero value is ReplicasOrPrimary.
	Reads Reads
	// SessionWait bounds how long read-only work with a Session waits for
	// a replica to replay the Session's position before it goes to the
	// primary (or fails, under ReplicasOnly): 0 means 50 ms.
	SessionWait time.Duration
	// PrimaryWait bounds how long a write waits for a primary when none is
	// known (during a failover): 0 means 10 s. ctx bounds it too.
	PrimaryWait time.Duration
	// Logger receives role changes and nodes going down or coming back.
	// nil: discard. No DSN or password is ever logged.
	Logger *slog.Logger
}

func (o Options) check() error {
	var p invalid.Problems
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"CheckInterval", o.CheckInterval}, {"CheckTimeout", o.CheckTimeout}, {"MaxLag", o.MaxLag},
		{"SessionWait", o.SessionWait}, {"PrimaryWait", o.PrimaryWait},
	} {
		if d.v < 0 {
			p.Add("%s is negative (%v)", d.name, d.v)
		}
	}
	if o.MaxLagBytes < 0 {
		p.Add("MaxLagBytes is negative (%d)", o.MaxLagBytes)
	}
	if o.Reads < ReplicasOrPrimary || o.Reads > PrimaryOnly {
		p.Add("Reads is %v, not one of ReplicasOrPrimary, ReplicasOnly, PrimaryOnly", o.Reads)
	}
	return p.Err(ErrInvalid)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (o Options) withDefaults() Options {
	o.CheckInterval = orDefault(o.CheckInterval, DefaultCheckInterval)
	o.CheckTimeout = orDefault(o.CheckTimeout, DefaultCheckTimeout)
	o.MaxLag = orDefault(o.MaxLag, DefaultMaxLag)
	o.SessionWait = orDefault(o.SessionWait, DefaultSessionWait)
	o.PrimaryWait = orDefault(o.PrimaryWait, DefaultPrimaryWait)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
