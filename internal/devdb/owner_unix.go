//go:build unix

package devdb

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// ServerUser is the unprivileged account that server programs (postgres,
// pgbouncer) run as when the process is root, as both refuse to run as
// root. A nil *ServerUser means the current user.
type ServerUser struct{ uid, gid uint32 }

// LookupServerUser returns the "postgres" account when the process is root,
// and nil otherwise.
func LookupServerUser() (*ServerUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("devdb: running as root needs a \"postgres\" user to run server programs as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &ServerUser{uid: uint32(uid), gid: uint32(gid)}, nil
}

// Chown gives path to the user, so that a server program may write there.
func (o *ServerUser) Chown(path string) error {
	if o == nil {
		return nil
	}
	return os.Chown(path, int(o.uid), int(o.gid))
}

// Apply makes cmd run as the user, and exit if this process dies without
// stopping it.
func (o *ServerUser) Apply(cmd *exec.Cmd) {
	dieWithParent(cmd)
	if o == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: o.uid, Gid: o.gid}
}
