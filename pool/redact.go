package pool

import (
	"net/url"
	"strings"
)

// Redact returns dsn with every password in it masked: the password of a
// URL's user, a password query parameter (?password=) and a password
// keyword of the keyword/value form. Use it where a DSN must be shown.
func Redact(dsn string) string {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(a connection URL that does not parse; not shown)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	var b strings.Builder
	last := 0
	for _, kv := range keywordValues(dsn) {
		if kv.key == "password" {
			b.WriteString(dsn[last:kv.valStart])
			b.WriteString("xxxxx")
			last = kv.end
		}
	}
	b.WriteString(dsn[last:])
	return b.String()
}

// splitPassword returns dsn without its password, and the password. Open
// parses the DSN without it, so that nothing pgx keeps of the string
// (pgxpool.Config.ConnString, parse errors) holds the secret; the password
// is put in the parsed config instead.
func splitPassword(dsn string) (rest, password string) {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn, ""
		}
		if pw, ok := u.User.Password(); ok {
			password = pw
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			password = q.Get("password")
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), password
	}
	var b strings.Builder
	last := 0
	for _, kv := range keywordValues(dsn) {
		if kv.key == "password" {
			b.WriteString(dsn[last:kv.start])
			last = kv.end
			password = kv.value
		}
	}
	b.WriteString(dsn[last:])
	return b.String(), password
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// passwordCandidates are the strings in dsn that may be a password, for
// scrubbing error text when the DSN does not parse.
func passwordCandidates(dsn string) []string {
	var out []string
	if _, pw := splitPassword(dsn); pw != "" {
		out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	if isURL(dsn) {
		// A URL that does not parse: take what sits between the scheme's
		// user and the host.
		rest := dsn[strings.Index(dsn, "://")+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				out = append(out, rest[c+1:at])
			}
		}
		if i := strings.Index(dsn, "password="); i >= 0 {
			v := dsn[i+len("password="):]
			if j := strings.IndexAny(v, "&#"); j >= 0 {
				v = v[:j]
			}
			out = append(out, v)
		}
	}
	return out
}

type keywordValue struct {
	key, value           string
	start, valStart, end int // the pair's span in the string, and its value's start
}

// keywordValues splits a keyword/value DSN the way libpq and pgconn do:
// "key = value" pairs separated by spaces, values optionally in single
// quotes, with backslash escapes.
func keywordValues(s string) []keywordValue {
	var out []keywordValue
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out
		}
		start := i
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return out
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 1
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		valStart := i
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
			if i < len(s) {
				i++ // closing quote
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out = append(out, keywordValue{key: key, value: val.String(), start: start, valStart: valStart, end: i})
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// dsnHas reports whether dsn sets the parameter key.
func dsnHas(dsn, key string) bool {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		return err == nil && u.Query().Has(key)
	}
	for _, kv := range keywordValues(dsn) {
		if kv.key == key {
			return true
		}
	}
	return false
}
