// Package faultproxy is a loopback TCP proxy for PostgreSQL fault tests. It
// forwards bytes between clients and a server and, when told to, cuts
// connections, stalls them or adds latency; it also understands enough of
// the PostgreSQL wire protocol to cut a connection exactly around COMMIT.
//
// It listens on 127.0.0.1 only and sends traffic only to the server it was
// given; it stops when Close is called.
package faultproxy
