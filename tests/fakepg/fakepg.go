// Package fakepg is a scripted server that speaks just enough of the
// PostgreSQL protocol (startup with no password, simple queries) to stand
// in for servers the tests cannot run, such as CockroachDB or YugabyteDB:
// it reports the parameters it is given at connect, answers each simple
// query as a script says, and records every message it receives, so a
// test can see what a client sent. Anything else (a Parse, a fast-path
// FunctionCall) is recorded and refused with an error, as a server that
// does not take it would.
package fakepg

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Reply is the answer to one statement of a simple query.
type Reply struct {
	// Tag is the command tag ("UPDATE 1"); empty means one made from the
	// statement's first word.
	Tag string
	// Code, when set, makes the statement fail with this SQLSTATE.
	Code string
	// Hangup closes the connection instead of answering.
	Hangup bool
}

// Script answers a statement; nil, or a zero Reply, is success.
type Script func(stmt string) Reply

// Server is a running fake.
type Server struct {
	ln     net.Listener
	params map[string]string
	script Script

	mu    sync.Mutex
	seen  []string
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on a free 127.0.0.1 port. params are sent as
// ParameterStatus at connect (server_version, crdb_version, ...).
func Start(params map[string]string, script Script) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, params: params, script: script, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// URL is a connection string for the fake.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://fake@%s/fake?sslmode=disable", s.ln.Addr())
}

// Seen returns the messages received so far: "Q <statement>" for each
// statement of a simple query, "F <oid>" for a fast-path call, "P <sql>"
// for a Parse.
func (s *Server) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Close stops listening, closes every connection and waits for them.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) record(m string) {
	s.mu.Lock()
	s.seen = append(s.seen, m)
	s.mu.Unlock()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				_ = c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		break
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for k, v := range s.params {
		be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	status := byte('I')
	skipToSync := false
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Terminate:
			return
		case *pgproto3.Query:
			if !s.query(be, m.String, &status) {
				return
			}
		case *pgproto3.FunctionCall:
			s.record(fmt.Sprintf("F %d", m.Function))
			refuse(be, "0A000", "fast-path function calls are not supported", &status)
			be.Send(&pgproto3.ReadyForQuery{TxStatus: status})
		case *pgproto3.Parse:
			s.record("P " + m.Query)
			refuse(be, "0A000", "the extended query protocol is not scripted", &status)
			skipToSync = true
		case *pgproto3.Sync:
			skipToSync = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: status})
		default:
			if !skipToSync {
				refuse(be, "08P01", fmt.Sprintf("unexpected %T", m), &status)
				skipToSync = true
			}
		}
		if be.Flush() != nil {
			return
		}
	}
}

// query answers each statement of a simple query; false means hang up.
func (s *Server) query(be *pgproto3.Backend, sql string, status *byte) bool {
	stmts := strings.Split(sql, ";")
	answered := false
	for _, stmt := range stmts {
		stmt = strings.TrimSpace(stmt)
		if stmt == "" || strings.HasPrefix(stmt, "--") {
			continue
		}
		answered = true
		s.record("Q " + stmt)
		if *status == 'E' && !isEnd(stmt) {
			refuse(be, "25P02", "current transaction is aborted, commands ignored until end of transaction block", status)
			break
		}
		var r Reply
		if s.script != nil {
			r = s.script(stmt)
		}
		if r.Hangup {
			return false
		}
		if r.Code != "" {
			refuse(be, r.Code, "scripted failure", status)
			break
		}
		tag := r.Tag
		word := strings.ToUpper(strings.Fields(stmt)[0])
		if tag == "" {
			tag = word
		}
		switch word {
		case "BEGIN", "START":
			*status = 'T'
		case "COMMIT", "END":
			if *status == 'E' {
				tag = "ROLLBACK"
			}
			*status = 'I'
		case "ROLLBACK", "ABORT":
			*status = 'I'
		}
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	if !answered {
		be.Send(&pgproto3.EmptyQueryResponse{})
	}
	be.Send(&pgproto3.ReadyForQuery{TxStatus: *status})
	return true
}

func isEnd(stmt string) bool {
	w := strings.ToUpper(strings.Fields(stmt)[0])
	return w == "COMMIT" || w == "ROLLBACK" || w == "END" || w == "ABORT"
}

func refuse(be *pgproto3.Backend, code, msg string, status *byte) {
	be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg})
	if *status == 'T' {
		*status = 'E'
	}
}
