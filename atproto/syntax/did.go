package syntax

import (
	"fmt"
	"strings"
)

// DIDMaxLength is the hard limit on DID length in atproto: 2048 characters
// (atproto.com/specs/did).
const DIDMaxLength = 2048

// DID is a decentralized identifier such as "did:plc:z72i7hdynmk6r22z27h6tvur".
// DIDs are case-sensitive. Any method with valid syntax is accepted; whether
// a method is supported is a separate question.
type DID string

// ParseDID checks s against the atproto DID syntax: "did:", a method of
// lower-case letters, ":", then an identifier of letters, digits and
// "._:%-" that does not end in ':' or '%'.
func ParseDID(s string) (DID, error) {
	if r := didReason(s); r != "" {
		return "", newError("DID", s, r)
	}
	return DID(s), nil
}

// didReason returns why s is not a DID, or "" when it is one.
func didReason(s string) string {
	if len(s) > DIDMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), DIDMaxLength)
	}
	if len(s) < 4 || s[:4] != "did:" {
		if len(s) >= 4 && equalFoldASCII(s[:4], "did:") {
			return "the \"did:\" prefix must be lower-case"
		}
		return "does not start with \"did:\""
	}
	i := 4
	for i < len(s) && s[i]-'a' < 26 {
		i++
	}
	if i == 4 {
		if i == len(s) {
			return "missing method"
		}
		if s[i] == ':' {
			return "empty method"
		}
		return badByte("method", s[i], i) + "; methods are lower-case letters only"
	}
	if i == len(s) {
		return "missing ':' after the method"
	}
	if s[i] != ':' {
		return badByte("method", s[i], i) + "; methods are lower-case letters only"
	}
	i++
	if i == len(s) {
		return "empty identifier after the method"
	}
	for j := i; j < len(s); j++ {
		if charTable[s[j]]&cDID == 0 {
			r := badByte("identifier", s[j], j)
			switch s[j] {
			case '/', '?', '#':
				r += "; paths, queries and fragments are not allowed"
			}
			return r
		}
	}
	switch s[len(s)-1] {
	case ':':
		return "ends with ':'"
	case '%':
		return "ends with '%'"
	}
	return ""
}

// String returns the DID.
func (d DID) String() string { return string(d) }

// Method returns the DID method, such as "plc" or "web".
func (d DID) Method() string {
	s := string(d)
	if !strings.HasPrefix(s, "did:") {
		return ""
	}
	s = s[4:]
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return ""
}

// Identifier returns the method-specific identifier: everything after the
// method and its colon.
func (d DID) Identifier() string {
	s := string(d)
	if !strings.HasPrefix(s, "did:") {
		return ""
	}
	s = s[4:]
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// AtIdentifier returns the DID as an AtIdentifier.
func (d DID) AtIdentifier() AtIdentifier { return AtIdentifier(d) }
