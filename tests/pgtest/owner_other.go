//go:build !unix

package pgtest

import "os/exec"

type owner struct{}

func clusterOwner() (*owner, error)   { return nil, nil }
func (o *owner) chown(string) error   { return nil }
func setCredential(*exec.Cmd, *owner) {}
