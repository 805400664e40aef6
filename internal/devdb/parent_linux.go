package devdb

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server exit if this process dies without
// stopping it, so a killed program or test run leaves no cluster behind.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
}
