// Package txconn reads the connection under a pgx.Tx without sending
// anything. The pgx.Tx that txn.WithTx hands fn may not have sent BEGIN
// yet (it rides with fn's first statement), and its Conn method sends it,
// since the caller may run statements on the connection. Packages of this
// module that only read the connection's parameters or send it a cancel
// request use Of instead, so that their statement can still carry BEGIN.
package txconn

import "github.com/jackc/pgx/v5"

// peek is set by package txn: it returns the connection under a tx of its
// own without sending a pending BEGIN, and false for any other tx.
var peek func(pgx.Tx) (*pgx.Conn, bool)

// Register sets the function Of asks first. Package txn calls it once, at
// init.
func Register(f func(pgx.Tx) (*pgx.Conn, bool)) { peek = f }

// Of returns the connection under tx without sending anything: not for
// statements, which must go through tx. It is tx.Conn() for a tx that
// package txn did not make.
func Of(tx pgx.Tx) *pgx.Conn {
	if peek != nil {
		if c, ok := peek(tx); ok {
			return c
		}
	}
	return tx.Conn()
}
