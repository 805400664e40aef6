package locks

import (
	"strings"
)

// The scanner below knows just enough of PostgreSQL's lexical rules to find
// the words of a query that are SQL rather than data: it skips comments
// (nested /* */ too), string constants ('...', E'...' with backslash escapes,
// dollar-quoted $tag$...$tag$) and quoted identifiers, and tracks
// parentheses. That is what it takes to append a locking clause without
// being fooled by a "FOR UPDATE" inside a string or a comment, and to see a
// second statement hiding after a semicolon.

type tokKind int

const (
	tokWord   tokKind = iota // keyword or unquoted identifier; text is upper-cased
	tokQuoted                // "quoted identifier"
	tokString                // string constant of any form
	tokParam                 // $1
	tokSemi                  // ;
	tokOpen                  // (
	tokClose                 // )
	tokOther                 // number, operator, punctuation
)

type token struct {
	kind       tokKind
	text       string // upper-cased for words
	start, end int    // byte offsets in the query
	depth      int    // parentheses around the token
}

// scan splits query into tokens. It fails on an unterminated comment,
// string or quoted identifier and on unbalanced parentheses: the server
// would refuse such a query anyway, and appending to it is not safe.
func scan(query string) ([]token, error) {
	var toks []token
	depth := 0
	i := 0
	n := len(query)
	for i < n {
		c := query[i]
		start := i
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < n && query[i+1] == '-':
			for i < n && query[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < n && query[i+1] == '*':
			end, ok := skipBlockComment(query, i)
			if !ok {
				return nil, invalid("query has an unterminated /* comment")
			}
			i = end
			continue
		case c == '\'':
			escapes := len(toks) > 0 && toks[len(toks)-1].kind == tokWord &&
				toks[len(toks)-1].text == "E" && toks[len(toks)-1].end == i
			end, ok := skipQuoted(query, i, '\'', escapes)
			if !ok {
				return nil, invalid("query has an unterminated string constant")
			}
			if escapes {
				// E'...' is one constant, not a word and a string.
				start = toks[len(toks)-1].start
				toks = toks[:len(toks)-1]
			}
			toks = append(toks, token{kind: tokString, start: start, end: end, depth: depth})
			i = end
			continue
		case c == '"':
			end, ok := skipQuoted(query, i, '"', false)
			if !ok {
				return nil, invalid("query has an unterminated quoted identifier")
			}
			toks = append(toks, token{kind: tokQuoted, start: i, end: end, depth: depth})
			i = end
			continue
		case c == '$':
			if i+1 < n && isDigit(query[i+1]) {
				i++
				for i < n && isDigit(query[i]) {
					i++
				}
				toks = append(toks, token{kind: tokParam, start: start, end: i, depth: depth})
				continue
			}
			if tag, ok := dollarTag(query, i); ok {
				closing := strings.Index(query[i+len(tag):], tag)
				if closing < 0 {
					return nil, invalid("query has an unterminated dollar-quoted string %s", tag)
				}
				i += len(tag) + closing + len(tag)
				toks = append(toks, token{kind: tokString, start: start, end: i, depth: depth})
				continue
			}
			i++
			toks = append(toks, token{kind: tokOther, start: start, end: i, depth: depth})
			continue
		case isIdentStart(c):
			for i < n && isIdentCont(query[i]) {
				i++
			}
			toks = append(toks, token{kind: tokWord, text: strings.ToUpper(query[start:i]), start: start, end: i, depth: depth})
			continue
		case isDigit(c):
			for i < n && (isIdentCont(query[i]) || query[i] == '.') {
				i++
			}
			toks = append(toks, token{kind: tokOther, start: start, end: i, depth: depth})
			continue
		case c == '(':
			toks = append(toks, token{kind: tokOpen, start: i, end: i + 1, depth: depth})
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, invalid("query has an unbalanced ')'")
			}
			toks = append(toks, token{kind: tokClose, start: i, end: i + 1, depth: depth})
		case c == ';':
			toks = append(toks, token{kind: tokSemi, start: i, end: i + 1, depth: depth})
		default:
			toks = append(toks, token{kind: tokOther, start: i, end: i + 1, depth: depth})
		}
		i++
	}
	if depth != 0 {
		return nil, invalid("query has an unbalanced '('")
	}
	return toks, nil
}

// skipBlockComment returns the offset just past the comment that opens at
// i. PostgreSQL's block comments nest.
func skipBlockComment(s string, i int) (int, bool) {
	level := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			level++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			level--
			i += 2
			if level == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return i, false
}

// skipQuoted returns the offset just past the quoted text that opens at i
// with q. A doubled q stands for itself; with escapes (E'...' strings) a
// backslash escapes the next byte.
func skipQuoted(s string, i int, q byte, escapes bool) (int, bool) {
	i++
	for i < len(s) {
		switch {
		case escapes && s[i] == '\\':
			i += 2
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		default:
			i++
		}
	}
	return i, false
}

// dollarTag returns the opening tag ($$ or $name$) of a dollar-quoted
// string starting at i.
func dollarTag(s string, i int) (string, bool) {
	j := i + 1
	if j < len(s) && isIdentStart(s[j]) {
		for j < len(s) && isIdentCont(s[j]) && s[j] != '$' {
			j++
		}
	}
	if j < len(s) && s[j] == '$' {
		return s[i : j+1], true
	}
	return "", false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
