package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/txkit/txkit/internal/invalid"
)

// Position is a place in the primary's write-ahead log (a pg_lsn). A
// replica that has replayed up to a Position has every transaction that
// committed before it.
type Position uint64

// String is PostgreSQL's text form of an LSN, "16/B374D848".
func (p Position) String() string {
	return fmt.Sprintf("%X/%X", uint64(p)>>32, uint32(p))
}

// ParsePosition reads PostgreSQL's text form of an LSN, as String writes
// it. Anything else is refused with an error matching ErrInvalid.
func ParsePosition(s string) (Position, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, invalid.Errorf(ErrInvalid, "position %q is not of the form X/X (hexadecimal, as pg_lsn)", show(s))
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, invalid.Errorf(ErrInvalid, "position %q is not of the form X/X (hexadecimal, as pg_lsn)", show(s))
	}
	return Position(h<<32 | l), nil
}

// walLongPageHeader is the size of the header that starts a WAL segment
// (SizeOfXLogLongPHD); other pages start with a shorter one (24 bytes).
const walLongPageHeader = 40

// settled is how far a replica must have replayed to have everything
// before p, a primary's WAL insert position, given the WAL page size
// (0: the default, 8 kB). When the last record ended exactly at a page
// boundary, the insert position is past the next page's header, while a
// replica's replay position stays at the boundary: no record ends inside a
// header, so the boundary is as good as p. Without this, a replica of a
// primary idle after a segment switch would never look caught up.
func settled(p Position, walBlock int64) Position {
	if walBlock <= 0 {
		walBlock = 8192
	}
	if off := uint64(p) % uint64(walBlock); off != 0 && off <= walLongPageHeader {
		return p - Position(off)
	}
	return p
}

// show shortens a caller's string for an error message.
func show(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Session carries read-your-writes across transactions: every read-write
// transaction a [Cluster] commits with the Session in its ctx (see
// [WithSession]) raises the Session's position to that commit's WAL
// position, and a read-only transaction with it in ctx runs only on a node
// that has replayed that far. A Session is safe for concurrent use; its
// position only grows.
type Session struct{ pos atomic.Uint64 }

// NewSession returns a Session whose reads must see everything committed
// up to after (0: nothing yet).
func NewSession(after Position) *Session {
	s := &Session{}
	s.pos.Store(uint64(after))
	return s
}

// ResumeSession returns a Session from a token that [Session.Token] made,
// for a caller that carries it between requests (a cookie, a header). A
// malformed token is refused with an error matching ErrInvalid; an empty
// one starts a Session with nothing to wait for.
func ResumeSession(token string) (*Session, error) {
	if token == "" {
		return NewSession(0), nil
	}
	p, err := ParsePosition(token)
	if err != nil {
		return nil, err
	}
	return NewSession(p), nil
}

// Position is the WAL position of the Session's latest commit.
func (s *Session) Position() Position { return Position(s.pos.Load()) }

// Token is the Session's position as a string to hand to a client and
// take back with [ResumeSession]; "" when the Session has no commit yet.
func (s *Session) Token() string {
	p := s.Position()
	if p == 0 {
		return ""
	}
	return p.String()
}

// Observe raises the Session's position to p if p is later.
func (s *Session) Observe(p Position) {
	for {
		cur := s.pos.Load()
		if uint64(p) <= cur || s.pos.CompareAndSwap(cur, uint64(p)) {
			return
		}
	}
}

type sessionKey struct{}

// WithSession returns ctx carrying s: WithTx on a Cluster with this ctx
// reads its own writes (see [Session]).
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the Session in ctx, or nil.
func SessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}
