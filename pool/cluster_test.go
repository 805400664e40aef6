package pool_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/tests/pgtest"
)

// scratch is a throwaway cluster the pool tests share: a small
// max_connections, password authentication for every role but postgres,
// and TLS with a certificate from a CA made here.
type scratch struct {
	cluster *pgtest.Cluster
	dir     string
	caFile  string // the CA that signed the server's certificate
}

const (
	scratchMaxConns = 20 // superuser_reserved_connections 3 leaves 17
	appPassword     = "s3cret-Pa55-word-7c1d"
)

var scratchOnce struct {
	sync.Once
	s   *scratch
	err error
}

// scratchCluster starts the shared throwaway cluster on first use; it is
// stopped when the package's tests end. Tests using it skip, saying why,
// when no PostgreSQL server binaries are installed.
func scratchCluster(t *testing.T) *scratch {
	t.Helper()
	scratchOnce.Do(func() { scratchOnce.s, scratchOnce.err = startScratch() })
	if scratchOnce.err != nil {
		t.Skipf("needs a throwaway cluster from the local PostgreSQL binaries (initdb, postgres): %v", scratchOnce.err)
	}
	return scratchOnce.s
}

func startScratch() (*scratch, error) {
	dir, err := os.MkdirTemp("", "txkit-pool-")
	if err != nil {
		return nil, err
	}
	s := &scratch{dir: dir, caFile: filepath.Join(dir, "ca.crt")}
	owner, err := pgtest.LookupServerUser()
	if err != nil {
		return nil, err
	}
	hba := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(dir, "hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	if err := writeCerts(dir); err != nil {
		return nil, err
	}
	for _, f := range []string{"", "hba.conf", "server.crt", "server.key"} {
		if err := owner.Chown(filepath.Join(dir, f)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.StartClusterWith(ctx,
		fmt.Sprintf("max_connections=%d", scratchMaxConns),
		"hba_file="+filepath.Join(dir, "hba.conf"),
		"ssl=on",
		"ssl_cert_file="+filepath.Join(dir, "server.crt"),
		"ssl_key_file="+filepath.Join(dir, "server.key"),
	)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.cluster = c
	pgtest.AtExit(func() { _ = c.Close(); _ = os.RemoveAll(dir) })
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, sql := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE app LOGIN PASSWORD '" + appPassword + "' CONNECTION LIMIT 3",
		"CREATE ROLE reporting LOGIN PASSWORD '" + appPassword + "'",
		"CREATE DATABASE limited CONNECTION LIMIT 2",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// url connects to db as user with password over TCP; extra is appended
// to the query string.
func (s *scratch) url(user, password, db, extra string) string {
	cred := user
	if password != "" {
		cred += ":" + password
	}
	u := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", cred, s.cluster.Port(), db)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 signed by it.
func writeCerts(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "txkit test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return err
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.crt": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return err
		}
	}
	// The CA file is read by the client (this process), not the server.
	return os.Chmod(filepath.Join(dir, "ca.crt"), 0o644)
}
