//go:build unix

package devdb

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// reserve takes an exclusive lock on a file named after port, held until
// this process exits, so no other process reserves the port with
// FreePort. It reports false when another process holds it; when the
// lock directory cannot be used, it reserves nothing and reports true.
func reserve(port int) bool {
	dir := filepath.Join(os.TempDir(), "txkit-ports")
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		return true
	}
	_ = os.Chmod(dir, 0o1777) // shared by the test processes of every user
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return false
	}
	reserved = append(reserved, f) // kept open: the lock lives as long as the process
	return true
}

// reserved holds the lock files of the ports this process reserved.
var reserved []*os.File
