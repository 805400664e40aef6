package pool_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
)

// The pool's own sockets have TCP keepalive on, with the idle time and
// interval of Options.KeepAlive and 3 probes: a peer that vanished is
// found by the client too, not only by the server.
func TestClientSocketHasTCPKeepAlive(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{KeepAlive: 7 * time.Second})
	c, err := p.Acquire(context.Background())
	require.NoError(t, err)
	defer c.Release()
	tcp, ok := c.Conn().PgConn().Conn().(*net.TCPConn)
	if !ok {
		t.Skipf("the test server is not reached over plain TCP (%T); the socket options cannot be read", c.Conn().PgConn().Conn())
	}
	raw, err := tcp.SyscallConn()
	require.NoError(t, err)
	got := map[string]int{}
	require.NoError(t, raw.Control(func(fd uintptr) {
		for name, opt := range map[string][2]int{
			"SO_KEEPALIVE":  {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE},
			"TCP_KEEPIDLE":  {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE},
			"TCP_KEEPINTVL": {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL},
			"TCP_KEEPCNT":   {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT},
		} {
			v, err := syscall.GetsockoptInt(int(fd), opt[0], opt[1])
			require.NoError(t, err, name)
			got[name] = v
		}
	}))
	assert.Equal(t, map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 7, "TCP_KEEPCNT": 3}, got)
}
