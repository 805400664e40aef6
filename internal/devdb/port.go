package devdb

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// given holds the ports FreePort returned in this process: it never
// returns one twice, even before a server binds it.
var given struct {
	mu    sync.Mutex
	ports map[int]bool
}

// FreePort returns a loopback TCP port that nothing listens on, for a
// server started after the call. The port is taken from below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range), so that no
// outgoing connection gets it as its local port before the server binds
// it or while a stopped server is down; it is never returned twice in a
// process, and it is reserved for this process's lifetime against other
// processes that use FreePort (a lock file under the temporary
// directory), so concurrent test binaries do not start servers on the
// same port. Where the ephemeral range is unknown it falls back to a
// port the kernel picks.
func FreePort() (int, error) {
	given.mu.Lock()
	defer given.mu.Unlock()
	if given.ports == nil {
		given.ports = map[int]bool{}
	}
	if low, ok := ephemeralLow(); ok && low > 10000 {
		lo := max(1024, low-12000)
		for range 200 {
			port := lo + rand.IntN(low-lo)
			if given.ports[port] || !canListen(port) || !reserve(port) {
				continue
			}
			given.ports[port] = true
			return port, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	port := l.Addr().(*net.TCPAddr).Port
	given.ports[port] = true
	return port, nil
}

func canListen(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false
	}
	low, err := strconv.Atoi(fields[0])
	return low, err == nil
}
