package pool

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// checkTLS refuses a TLS setting below the floor. It reads what pgconn
// parsed (the primary host and every fallback, which is how sslmode
// prefer and allow are expressed) rather than the sslmode text, so settings
// from PGSSLMODE and other environment variables are judged too.
func checkTLS(cc *pgconn.Config, o Options) error {
	type attempt struct {
		host string
		tls  *tls.Config
	}
	attempts := []attempt{{cc.Host, cc.TLSConfig}}
	for _, f := range cc.Fallbacks {
		attempts = append(attempts, attempt{f.Host, f.TLSConfig})
	}
	for _, a := range attempts {
		if strings.HasPrefix(a.host, "/") {
			continue // a unix socket: local, and TLS does not apply
		}
		if o.VerifyFull && (a.tls == nil || a.tls.InsecureSkipVerify) {
			return fmt.Errorf("%w: host %s: VerifyFull is set but the DSN does not verify the server's certificate and name; use sslmode=verify-full", ErrInsecure, a.host)
		}
		if a.tls == nil && !o.AllowInsecure && !isLoopback(a.host) {
			return fmt.Errorf("%w: host %s: the DSN's sslmode (disable, allow or prefer; prefer is the default) lets the session travel in plaintext to a host that is not local; use sslmode=verify-full (or require), or set AllowInsecure", ErrInsecure, a.host)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsLevel describes one attempt's TLS for logs.
func tlsLevel(c *tls.Config) string {
	switch {
	case c == nil:
		return "off"
	case !c.InsecureSkipVerify:
		return "verify-full"
	case c.VerifyPeerCertificate != nil:
		return "verify-ca"
	default:
		return "require"
	}
}
