package pool

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
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
