package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
// position only grows, except out of the unknown state (see
// [Session.Unknown]).
type Session struct {
	mu  sync.Mutex
	pos Position
	// unknowns counts the times the position became unknown: a commit
	// that began after the latest one may replace it (see observeAfter).
	unknowns uint64
}

// NewSession returns a Session whose reads must see everything committed
// up to after (0: nothing yet).
func NewSession(after Position) *Session {
	return &Session{pos: after}
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
func (s *Session) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Unknown reports whether the Session's position is unknown: a commit's
// position could not be read (its COMMIT's answer was lost and the
// primary could not be asked), or a token named a position no server
// reaches (from UnknownPosition up). Its reads then go to the primary,
// without waiting for a replica, until its next commit through a Cluster
// that began after the position became unknown: that commit's position
// covers the unknown one (a later transaction on the same primary, or on
// the one promoted after it, which has everything that survived), and
// replaces it.
func (s *Session) Unknown() bool { return s.Position() >= UnknownPosition }

// UnknownPosition is the position of a Session whose position is unknown
// (see [Session.Unknown]); its token is "7FFFFFFF/FFFFFFFF".
const UnknownPosition = Position(1<<63 - 1)

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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raise(p)
}

func (s *Session) raise(p Position) {
	if p >= UnknownPosition {
		s.unknowns++
	}
	if p > s.pos {
		s.pos = p
	}
}

// mark is the Session's state when a transaction begins, for
// observeAfter: how many times its position became unknown, and whether it
// is unknown now.
func (s *Session) mark() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unknowns, s.pos >= UnknownPosition
}

// observeAfter records p, the position of a commit of a transaction that
// began when mark returned m and wasUnknown. If the Session was unknown
// then and nothing made it unknown since, the commit whose position was
// lost had committed before this transaction began, so p covers it: p
// replaces the unknown position.
func (s *Session) observeAfter(p Position, m uint64, wasUnknown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wasUnknown && p < UnknownPosition && s.pos >= UnknownPosition && s.unknowns == m {
		s.pos = p
		return
	}
	s.raise(p)
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
