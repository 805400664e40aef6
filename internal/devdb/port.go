package devdb

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort returns a loopback TCP port that nothing listens on, for a
// server started after the call. The port is free when FreePort returns,
// not reserved: it is taken from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), so that no outgoing connection of this
// or another process gets it as its local port before the server binds
// it, or while a stopped server is down. Where that range is unknown it
// falls back to a port the kernel picks.
func FreePort() (int, error) {
	if low, ok := ephemeralLow(); ok && low > 10000 {
		lo := max(1024, low-12000)
		for range 100 {
			port := lo + rand.IntN(low-lo)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
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
