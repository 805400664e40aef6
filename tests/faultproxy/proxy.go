package faultproxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// CommitFault says what to do with the next COMMIT a client sends.
type CommitFault int

const (
	// NoFault forwards COMMIT as usual.
	NoFault CommitFault = iota
	// DropCommit forwards what came before COMMIT in the same write (the
	// transaction-id query), lets the server's answer to that through up
	// to its ReadyForQuery, then cuts: COMMIT never reaches the server.
	DropCommit
	// CutAfterXID forwards COMMIT, lets the answer up to the first
	// ReadyForQuery through (the transaction id), then cuts: the server
	// commits, and the client never hears COMMIT's answer.
	CutAfterXID
	// CutBeforeAnswer forwards COMMIT and cuts before any answer reaches
	// the client.
	CutBeforeAnswer
	// DropAll forwards nothing of the write holding COMMIT and cuts.
	DropAll
)

func (f CommitFault) String() string {
	switch f {
	case NoFault:
		return "no fault"
	case DropCommit:
		return "drop COMMIT"
	case CutAfterXID:
		return "cut after xid"
	case CutBeforeAnswer:
		return "cut before answer"
	case DropAll:
		return "drop all"
	}
	return "CommitFault(" + strconv.Itoa(int(f)) + ")"
}

// Proxy forwards loopback TCP connections to a PostgreSQL server.
type Proxy struct {
	ln     net.Listener
	target string

	latency     atomic.Int64 // nanoseconds added before forwarding each chunk
	stalled     atomic.Bool
	refusing    atomic.Bool
	commitFault atomic.Int32 // armed CommitFault, consumed by the first COMMIT

	mu     sync.Mutex
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup

	commits atomic.Int64 // COMMIT messages seen
}

// New starts a proxy on a free 127.0.0.1 port in front of target
// ("host:port").
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetLatency delays every forwarded chunk, in both directions, by d.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Stall stops (true) or resumes (false) forwarding; bytes wait meanwhile.
func (p *Proxy) Stall(on bool) { p.stalled.Store(on) }

// Refuse makes the proxy close new connections at once (true), as a server
// that has gone away would, or accept them again (false). Connections
// already open are not touched.
func (p *Proxy) Refuse(on bool) { p.refusing.Store(on) }

// ArmCommitFault makes the next COMMIT sent through the proxy meet f.
func (p *Proxy) ArmCommitFault(f CommitFault) { p.commitFault.Store(int32(f)) }

// Commits returns how many COMMIT messages clients sent through the proxy.
func (p *Proxy) Commits() int64 { return p.commits.Load() }

// CutAll closes every open connection at once, as a network failure would.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
}

// Open returns how many client connections are open.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops accepting, cuts every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refusing.Load() {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{p: p, client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.cut()
			continue
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go l.clientToServer()
		go l.serverToClient()
	}
}

// link is one proxied connection.
type link struct {
	p              *Proxy
	client, server net.Conn
	once           sync.Once

	// Set by clientToServer when a commit fault fires; read by
	// serverToClient to know where to cut.
	mu          sync.Mutex
	cutAfterRFQ bool // cut once the next ReadyForQuery reached the client
	cutNow      bool
	startupDone bool
}

func (l *link) cut() {
	l.once.Do(func() {
		_ = l.client.Close()
		_ = l.server.Close()
		l.p.mu.Lock()
		delete(l.p.conns, l)
		l.p.mu.Unlock()
	})
}

func (l *link) pace() {
	for l.p.stalled.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Duration(l.p.latency.Load()); d > 0 {
		time.Sleep(d)
	}
}

func (l *link) clientToServer() {
	defer l.p.wg.Done()
	defer l.cut()
	buf := make([]byte, 64*1024)
	for {
		n, err := l.client.Read(buf)
		if n > 0 {
			l.pace()
			chunk := buf[:n]
			forward, stop := l.inspect(chunk)
			if len(forward) > 0 {
				if _, werr := l.server.Write(forward); werr != nil {
					return
				}
			}
			if stop {
				// The fault decides the rest: wait for serverToClient to cut.
				_, _ = io.Copy(io.Discard, l.client)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// inspect looks for a COMMIT in a client chunk. It returns what to forward
// and whether to stop forwarding client bytes after it.
func (l *link) inspect(chunk []byte) ([]byte, bool) {
	if !l.startupDone {
		// The startup message has no type byte; everything after it does.
		// pgx sends it (and any SSLRequest) in writes of its own.
		l.startupDone = isStartup(chunk)
		if l.startupDone {
			return chunk, false
		}
	}
	at := commitOffset(chunk)
	if at < 0 {
		return chunk, false
	}
	l.p.commits.Add(1)
	f := CommitFault(l.p.commitFault.Swap(int32(NoFault)))
	switch f {
	case DropCommit:
		l.setCut(true, false)
		return chunk[:at], true
	case CutAfterXID:
		l.setCut(true, false)
		return chunk, true
	case CutBeforeAnswer:
		l.setCut(false, true)
		return chunk, true
	case DropAll:
		l.cut()
		return nil, true
	}
	return chunk, false
}

func (l *link) setCut(afterRFQ, now bool) {
	l.mu.Lock()
	l.cutAfterRFQ, l.cutNow = afterRFQ, now
	l.mu.Unlock()
	if now {
		// Give the server the bytes, then cut before it can answer.
		l.closeClientSide()
	}
}

func (l *link) closeClientSide() {
	// Closing the client side first means no answer can reach it; the
	// server side is closed by cut once forwarding ends.
	_ = l.client.Close()
}

func (l *link) serverToClient() {
	defer l.p.wg.Done()
	defer l.cut()
	buf := make([]byte, 64*1024)
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			l.pace()
			chunk := buf[:n]
			l.mu.Lock()
			afterRFQ, now := l.cutAfterRFQ, l.cutNow
			l.mu.Unlock()
			if now {
				return
			}
			if afterRFQ {
				if end := readyForQueryEnd(chunk); end >= 0 {
					_, _ = l.client.Write(chunk[:end])
					// Let the answer reach the client before the cut.
					time.Sleep(10 * time.Millisecond)
					return
				}
			}
			if _, werr := l.client.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// isStartup reports whether chunk begins with a startup-phase message
// (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest): a length then
// a protocol code, no type byte.
func isStartup(chunk []byte) bool {
	if len(chunk) < 8 {
		return false
	}
	code := binary.BigEndian.Uint32(chunk[4:8])
	return code == 196608 || code == 80877103 || code == 80877104 || code == 80877102
}

// commitOffset returns the offset of the first message in chunk that runs
// COMMIT (a Parse or a simple Query of "commit"), or -1.
func commitOffset(chunk []byte) int {
	for i := 0; i+5 <= len(chunk); {
		typ := chunk[i]
		size := int(binary.BigEndian.Uint32(chunk[i+1 : i+5]))
		if size < 4 || i+1+size > len(chunk) {
			return -1
		}
		body := chunk[i+5 : i+1+size]
		switch typ {
		case 'Q':
			if isCommit(bytes.TrimRight(body, "\x00")) {
				return i
			}
		case 'P':
			// Parse: statement name \0, query \0, ...
			if j := bytes.IndexByte(body, 0); j >= 0 {
				rest := body[j+1:]
				if k := bytes.IndexByte(rest, 0); k >= 0 && isCommit(rest[:k]) {
					return i
				}
			}
		}
		i += 1 + size
	}
	return -1
}

func isCommit(q []byte) bool {
	q = bytes.TrimSpace(bytes.TrimRight(bytes.TrimSpace(q), ";"))
	return bytes.EqualFold(q, []byte("commit"))
}

// readyForQueryEnd returns the offset just past the first ReadyForQuery
// message in chunk, or -1. It assumes chunk starts on a message boundary,
// which holds for the answers to one pipelined write.
func readyForQueryEnd(chunk []byte) int {
	for i := 0; i+5 <= len(chunk); {
		size := int(binary.BigEndian.Uint32(chunk[i+1 : i+5]))
		if size < 4 {
			return -1
		}
		end := i + 1 + size
		if chunk[i] == 'Z' && end <= len(chunk) {
			return end
		}
		i = end
	}
	return -1
}

// Interpose starts a proxy in front of the server cfg points at and points
// cfg at the proxy instead. TLS is turned off for cfg, since the proxy reads
// the protocol, and so are fallbacks, which would bypass the proxy.
func Interpose(cfg *pgconn.Config) (*Proxy, error) {
	p, err := New(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = "127.0.0.1", uint16(p.Port())
	cfg.Fallbacks, cfg.TLSConfig = nil, nil
	return p, nil
}
