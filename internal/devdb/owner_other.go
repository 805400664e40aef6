//go:build !unix

package devdb

import "os/exec"

// ServerUser is the account server programs run as; off Unix, the current
// user.
type ServerUser struct{}

// LookupServerUser returns nil: server programs run as the current user.
func LookupServerUser() (*ServerUser, error) { return nil, nil }

// Chown does nothing off Unix.
func (o *ServerUser) Chown(string) error { return nil }

// Apply does nothing off Unix.
func (o *ServerUser) Apply(*exec.Cmd) {}
