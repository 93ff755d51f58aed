package syntax

import "fmt"

// URIMaxLength is the longest allowed URI in Lexicon "uri" fields: 8
// kilobytes (atproto.com/specs/lexicon, string formats).
const URIMaxLength = 8 * 1024

// URI is a generic URI as the Lexicon "uri" format accepts: an RFC 3986
// scheme, a colon and a non-empty remainder of printable ASCII without
// spaces.
type URI string

// ParseURI checks s against the generic URI syntax: scheme = letter
// followed by letters, digits, '+', '-' or '.', then ':', then at least one
// printable, non-space ASCII character.
func ParseURI(s string) (URI, error) {
	if r := uriReason(s); r != "" {
		return "", newError("URI", s, r)
	}
	return URI(s), nil
}

// uriReason returns why s is not a URI, or "" when it is one.
func uriReason(s string) string {
	if len(s) == 0 {
		return "empty string"
	}
	if len(s) > URIMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), URIMaxLength)
	}
	if !isAlpha(s[0]) {
		return "scheme must start with a letter, found " + describeByte(s[0])
	}
	i := 1
	for ; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '+' || c == '-' || c == '.' {
			continue
		}
		if c == ':' {
			break
		}
		return badByte("scheme", c, i)
	}
	if i == len(s) {
		return "missing ':' after the scheme"
	}
	i++
	if i == len(s) {
		return "nothing after the scheme"
	}
	for ; i < len(s); i++ {
		if charTable[s[i]]&cGraph == 0 {
			return badByte("URI", s[i], i)
		}
	}
	return ""
}

// String returns the URI.
func (u URI) String() string { return string(u) }

// Scheme returns the URI scheme, such as "https".
func (u URI) Scheme() string {
	for i := 0; i < len(u); i++ {
		if u[i] == ':' {
			return string(u[:i])
		}
	}
	return ""
}
