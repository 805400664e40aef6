package locks

import (
	"strings"

	"github.com/txkit/txkit/internal/ident"
)

// The scanner below follows PostgreSQL's lexer (src/backend/parser/scan.l)
// as far as it takes to find the words of a query that are SQL rather than
// data, with the boundaries the server sees:
//
//   - a -- comment ends at a newline, \n or \r;
//   - /* */ comments nest, and a /* inside one opens another;
//   - 'standard' strings double a quote to hold one, and a backslash is
//     just a character (standard_conforming_strings on: see [Query]);
//   - E'...' strings also take a backslash as escaping the next byte;
//   - B'...', X'...', N'...' and U&'...' strings end like standard strings;
//   - a string followed by whitespace holding a newline and another quote
//     goes on there, in the same mode: E'a' <newline> '\'' is one string;
//   - "quoted identifiers" (and U&"...") double a quote to hold one;
//   - $tag$...$tag$ dollar quotes, whose tag is letters, digits (not
//     first), underscores and bytes >= 0x80, end at the first $tag$;
//   - $1 is a parameter; a $ inside an identifier (a$b) or a number is
//     neither;
//   - numbers are digits, a decimal point and an exponent, nothing more:
//     1e'x' is the number 1 and the string E'x'.
//
// It tracks parentheses too. That is what it takes to append a locking
// clause without being fooled by a "FOR UPDATE" inside a string or a
// comment, and to see a second statement hiding after a semicolon. Where
// server versions differ (\v is whitespace from PostgreSQL 16, junk before
// it), the scanner takes a reading under which neither version sees another
// statement or a clause moved.

type tokKind int

const (
	tokWord   tokKind = iota // keyword or unquoted identifier; text is upper-cased (ASCII)
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
// would refuse such a query anyway, and appending to it is not safe. It
// fails on a NUL byte, which the server never sees: the protocol ends the
// text there.
func scan(query string) ([]token, error) {
	if strings.IndexByte(query, 0) >= 0 {
		return nil, invalid("query contains a NUL byte")
	}
	l := &lexer{q: query}
	for l.i < len(query) {
		if err := l.next(); err != nil {
			return nil, err
		}
	}
	if l.depth != 0 {
		return nil, invalid("query has an unbalanced '('")
	}
	return l.toks, nil
}

// lexer is scan's state: the query, the offset reached, the parentheses
// open there and the tokens so far.
type lexer struct {
	q     string
	i     int
	depth int
	toks  []token
}

// next consumes what starts at l.i: whitespace, a comment, or one token.
func (l *lexer) next() error {
	c := l.q[l.i]
	switch {
	case isSpace(c):
		l.i++
	case strings.HasPrefix(l.q[l.i:], "--"):
		l.i = skipLineComment(l.q, l.i)
	case strings.HasPrefix(l.q[l.i:], "/*"):
		end, ok := skipBlockComment(l.q, l.i)
		if !ok {
			return invalid("query has an unterminated /* comment")
		}
		l.i = end
	case c == '\'':
		return l.stringConstant()
	case c == '"':
		end, ok := skipQuoted(l.q, l.i, '"', false)
		if !ok {
			return invalid("query has an unterminated quoted identifier")
		}
		l.emit(tokQuoted, l.i, end, "")
	case c == '$':
		return l.dollar()
	case isIdentStart(c):
		end := l.i
		for end < len(l.q) && isIdentCont(l.q[end]) {
			end++
		}
		l.emit(tokWord, l.i, end, asciiUpper(l.q[l.i:end]))
	case isDigit(c) || c == '.' && l.i+1 < len(l.q) && isDigit(l.q[l.i+1]):
		l.emit(tokOther, l.i, skipNumber(l.q, l.i), "")
	default:
		return l.punctuation(c)
	}
	return nil
}

// emit appends a token from start to end and moves past it.
func (l *lexer) emit(kind tokKind, start, end int, text string) {
	l.toks = append(l.toks, token{kind: kind, text: text, start: start, end: end, depth: l.depth})
	l.i = end
}

// stringConstant consumes the string constant opening at l.i. An E just
// before the quote makes it an escape string, one constant with the E.
func (l *lexer) stringConstant() error {
	start := l.i
	last := len(l.toks) - 1
	escapes := last >= 0 && l.toks[last].kind == tokWord && l.toks[last].text == "E" && l.toks[last].end == l.i
	end, ok := skipString(l.q, l.i, escapes)
	if !ok {
		return invalid("query has an unterminated string constant")
	}
	if escapes {
		// E'...' is one constant, not a word and a string.
		start = l.toks[last].start
		l.toks = l.toks[:last]
	}
	l.emit(tokString, start, end, "")
	return nil
}

// dollar consumes what a $ at l.i opens: a parameter ($1), a dollar-quoted
// string ($tag$...$tag$), or else the $ alone.
func (l *lexer) dollar() error {
	start := l.i
	if start+1 < len(l.q) && isDigit(l.q[start+1]) {
		end := start + 1
		for end < len(l.q) && isDigit(l.q[end]) {
			end++
		}
		l.emit(tokParam, start, end, "")
		return nil
	}
	if tag, ok := dollarTag(l.q, start); ok {
		closing := strings.Index(l.q[start+len(tag):], tag)
		if closing < 0 {
			return invalid("query has an unterminated dollar-quoted string %s", ident.Show(tag))
		}
		l.emit(tokString, start, start+len(tag)+closing+len(tag), "")
		return nil
	}
	l.emit(tokOther, start, start+1, "")
	return nil
}

// punctuation consumes the one byte c at l.i, counting parentheses.
func (l *lexer) punctuation(c byte) error {
	switch c {
	case '(':
		l.emit(tokOpen, l.i, l.i+1, "")
		l.depth++
	case ')':
		l.depth--
		if l.depth < 0 {
			return invalid("query has an unbalanced ')'")
		}
		l.emit(tokClose, l.i, l.i+1, "")
	case ';':
		l.emit(tokSemi, l.i, l.i+1, "")
	default:
		l.emit(tokOther, l.i, l.i+1, "")
	}
	return nil
}

// skipLineComment returns the offset of the newline (\n or \r) that ends
// the -- comment opening at i, or len(s).
func skipLineComment(s string, i int) int {
	for i < len(s) && !isNewline(s[i]) {
		i++
	}
	return i
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

// skipString returns the offset just past the string constant whose
// opening quote is at i, continuation segments included: the server joins
// 'a' <newline> 'b' into one constant, and scans the later segments in the
// mode of the first (with escapes for an E'...' string).
func skipString(s string, i int, escapes bool) (int, bool) {
	for {
		end, ok := skipQuoted(s, i, '\'', escapes)
		if !ok {
			return end, false
		}
		next, ok := continuation(s, end)
		if !ok {
			return end, true
		}
		i = next
	}
}

// continuation reports whether the string constant that ended at p goes on:
// whitespace and -- comments holding at least one newline, then a quote.
// It returns the offset of that quote. Vertical tab counts as whitespace
// here (as from PostgreSQL 16): an older server refuses the query at the
// \v instead, so reading it as a continuation never lets more through.
func continuation(s string, p int) (int, bool) {
	newline := false
	for i := p; i < len(s); {
		c := s[i]
		switch {
		case isNewline(c):
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLineComment(s, i)
		case c == '\'' && newline:
			return i, true
		default:
			return p, false
		}
	}
	return p, false
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
	return len(s), false
}

// skipNumber returns the offset just past the numeric constant at i:
// digits, an optional decimal part (not "..", which is 1 followed by ..),
// an optional exponent with at least one digit. Whatever follows is another
// token, as PostgreSQL before 15 reads it; later versions refuse a letter
// right after a number ("trailing junk"), which never lets more through.
func skipNumber(s string, i int) int {
	n := len(s)
	for i < n && isDigit(s[i]) {
		i++
	}
	if i < n && s[i] == '.' && (i+1 >= n || s[i+1] != '.') {
		i++
		for i < n && isDigit(s[i]) {
			i++
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < n && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < n && isDigit(s[j]) {
			for j < n && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	return i
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

// isSpace is PostgreSQL's whitespace before version 16. A \v is a token of
// its own (tokOther): junk to PostgreSQL 15, whitespace to 16, and either
// way it cannot join or split the tokens around it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func isNewline(c byte) bool { return c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// asciiUpper upper-cases ASCII letters only, as PostgreSQL matches keywords:
// strings.ToUpper would turn "ſhare" into "SHARE", which the server reads as
// an identifier.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
