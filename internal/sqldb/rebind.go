package sqldb

import (
	"strconv"
	"strings"
)

// Rebind rewrites a query written with ? placeholders for dialect d.
//
// On SQLite the query is returned unchanged. On PostgreSQL each ? becomes
// $1, $2, ... in order, except inside 'string literals' (including E'...'
// escape strings), "quoted identifiers", -- line comments, /* block
// comments */ and $tag$ dollar-quoted strings $tag$; ?? becomes a single
// literal ? (the jsonb operator, in PostgreSQL-only queries).
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'':
			backslash := i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') &&
				(i == 1 || !isIdentChar(query[i-2]))
			j := skipQuoted(query, i, '\'', backslash)
			b.WriteString(query[i:j])
			i = j
		case c == '"':
			j := skipQuoted(query, i, '"', false)
			b.WriteString(query[i:j])
			i = j
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query)
			} else {
				j += i + 1
			}
			b.WriteString(query[i:j])
			i = j
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := skipBlockComment(query, i)
			b.WriteString(query[i:j])
			i = j
		case c == '$' && (i == 0 || !isIdentChar(query[i-1])):
			j := skipDollarQuoted(query, i)
			b.WriteString(query[i:j])
			i = j
		case c == '?':
			if i+1 < len(query) && query[i+1] == '?' {
				b.WriteByte('?')
				i += 2
				continue
			}
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// skipQuoted returns the index just past the quoted text starting at
// q[start] == quote, where a doubled quote stands for itself and, if
// backslash is set, a backslash escapes the next byte. An unterminated
// quote runs to the end.
func skipQuoted(q string, start int, quote byte, backslash bool) int {
	for i := start + 1; i < len(q); i++ {
		switch q[i] {
		case '\\':
			if backslash {
				i++
			}
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(q)
}

// skipBlockComment returns the index just past the (possibly nested, as in
// PostgreSQL) block comment starting at q[start:start+2] == "/*".
func skipBlockComment(q string, start int) int {
	depth := 0
	for i := start; i < len(q)-1; i++ {
		switch {
		case q[i] == '/' && q[i+1] == '*':
			depth++
			i++
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(q)
}

// skipDollarQuoted returns the index just past the dollar-quoted string
// starting at q[start] == '$', or start+1 if no dollar quote starts there
// (a lone $ or a $n parameter).
func skipDollarQuoted(q string, start int) int {
	i := start + 1
	for i < len(q) && q[i] != '$' {
		c := q[i]
		ok := c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') ||
			(i > start+1 && '0' <= c && c <= '9')
		if !ok {
			return start + 1
		}
		i++
	}
	if i >= len(q) {
		return start + 1
	}
	tag := q[start : i+1]
	end := strings.Index(q[i+1:], tag)
	if end < 0 {
		return len(q)
	}
	return i + 1 + end + len(tag)
}
