package devdb

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortIsBelowTheEphemeralRange: the port is free and, where the
// kernel's ephemeral range is known, below it, so no outgoing connection
// takes it as its local port.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if low, ok := ephemeralLow(); ok && low > 10000 && port >= low {
			t.Fatalf("FreePort = %d, inside the ephemeral range that starts at %d", port, low)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("FreePort = %d, which cannot be bound: %v", port, err)
		}
		_ = l.Close()
	}
}

// TestFreePortNeverRepeats: ports given out in one process are distinct,
// even while nothing listens on them.
func TestFreePortNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 50 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("FreePort returned %d twice", port)
		}
		seen[port] = true
	}
}
