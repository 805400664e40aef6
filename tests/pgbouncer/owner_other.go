//go:build !linux

package pgbouncer

import "os/exec"

// owner is the user PgBouncer runs as; off Linux tests run it as the
// current user.
type owner struct{}

func processOwner() (*owner, error)   { return nil, nil }
func (o *owner) chown(string) error   { return nil }
func setCredential(*exec.Cmd, *owner) {}
