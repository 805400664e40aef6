package cluster

import "errors"

// ErrInvalid is bad input: no nodes, a nil pool, a negative duration, a
// malformed position token. The error lists every problem found.
var ErrInvalid = errors.New("cluster: invalid input")

// ErrNoPrimary is returned when a write (or Primary) waited
// Options.PrimaryWait and no node was known to be the primary.
var ErrNoPrimary = errors.New("cluster: no primary")

// ErrNoReplica is returned for read-only work when no replica is fresh
// enough and Options.Reads is ReplicasOnly.
var ErrNoReplica = errors.New("cluster: no replica within the lag bound")

// ErrClosed is returned by calls on a closed Cluster.
var ErrClosed = errors.New("cluster: closed")
