package pool

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// checkPassfile applies libpq's rule to the password file pgconn reads when
// no password is given otherwise: a file that its group or others may read
// or write is not used. pgconn reads it without that check; Open refuses
// it with a clear error instead of connecting with a password anyone on the
// machine could have read (or planted).
func checkPassfile(dsn, dsnPassword string, o Options) error {
	if dsnPassword != "" || o.Password != nil || os.Getenv("PGPASSWORD") != "" || runtime.GOOS == "windows" {
		return nil
	}
	path := passfilePath(dsn)
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil //nolint:nilerr // no file: pgconn reads nothing from it either
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: the password file %s has group or world access (mode %04o); its permissions should be u=rw (0600) or less", ErrInsecure, path, perm)
	}
	return nil
}

// passfilePath is the password file pgconn would read: the DSN's passfile,
// else PGPASSFILE, else ~/.pgpass.
func passfilePath(dsn string) string {
	if isURL(dsn) {
		if u, err := url.Parse(dsn); err == nil && u.Query().Get("passfile") != "" {
			return u.Query().Get("passfile")
		}
	} else {
		for _, kv := range keywordValues(dsn) {
			if kv.key == "passfile" {
				return kv.value
			}
		}
	}
	if p := os.Getenv("PGPASSFILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pgpass")
}

// PasswordFile returns an [Options.Password] function that reads the
// password from the file at path for every new connection, so a secret
// that is rotated by rewriting the file (a mounted Kubernetes secret, a
// sidecar that refreshes a token) is picked up without a restart. A
// trailing newline is dropped. Like a passfile, a file its group or others
// may access is refused.
func PasswordFile(path string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("pool: password file: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
			return "", fmt.Errorf("%w: the password file %s has group or world access (mode %04o); its permissions should be u=rw (0600) or less", ErrInsecure, path, perm)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("pool: password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// PasswordEnv returns an [Options.Password] function that reads the
// password from the environment variable name for every new connection.
func PasswordEnv(name string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		pw, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("pool: the environment variable %s holding the password is not set", name)
		}
		return pw, nil
	}
}
