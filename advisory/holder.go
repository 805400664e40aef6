package advisory

import (
	"fmt"
	"strings"
)

// Holder is a session that held a lock, as pg_locks and pg_stat_activity
// showed it.
type Holder struct {
	PID             uint32 // the backend's process id (pg_backend_pid() in that session)
	Shared          bool
	ApplicationName string
	ClientAddr      string // empty for Unix-socket connections
}

func (h Holder) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d", h.PID)
	if h.Shared {
		b.WriteString(" (shared)")
	}
	if h.ApplicationName != "" {
		fmt.Fprintf(&b, " application %q", h.ApplicationName)
	}
	if h.ClientAddr != "" {
		b.WriteString(" from " + h.ClientAddr)
	}
	return b.String()
}
