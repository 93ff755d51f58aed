package syntax

import "strings"

// AtIdentifier is either a DID or a handle, as accepted by the Lexicon
// "at-identifier" format. The two are told apart by the "did:" prefix,
// since handles cannot contain ':'.
type AtIdentifier string

// ParseAtIdentifier parses s as a DID when it starts with "did:" and as a
// handle otherwise.
func ParseAtIdentifier(s string) (AtIdentifier, error) {
	if r := atIdentifierReason(s); r != "" {
		return "", newError("at-identifier", s, r)
	}
	return AtIdentifier(s), nil
}

// atIdentifierReason returns why s is neither a DID nor a handle, or "".
func atIdentifierReason(s string) string {
	if strings.HasPrefix(s, "did:") {
		if r := didReason(s); r != "" {
			return "not a valid DID: " + r
		}
		return ""
	}
	if r := handleReason(s); r != "" {
		return "not a DID, and not a valid handle: " + r
	}
	return ""
}

// String returns the identifier.
func (a AtIdentifier) String() string { return string(a) }

// IsDID reports whether the identifier is a DID.
func (a AtIdentifier) IsDID() bool { return strings.HasPrefix(string(a), "did:") }

// IsHandle reports whether the identifier is a handle.
func (a AtIdentifier) IsHandle() bool { return a != "" && !a.IsDID() }

// AsDID returns the identifier as a DID, or an error when it is a handle.
func (a AtIdentifier) AsDID() (DID, error) {
	if !a.IsDID() {
		return "", newError("DID", string(a), "at-identifier is a handle, not a DID")
	}
	return ParseDID(string(a))
}

// AsHandle returns the identifier as a handle, or an error when it is a
// DID.
func (a AtIdentifier) AsHandle() (Handle, error) {
	if a.IsDID() {
		return "", newError("handle", string(a), "at-identifier is a DID, not a handle")
	}
	return ParseHandle(string(a))
}

// Normalize lower-cases a handle; a DID is returned unchanged, since DIDs
// are case-sensitive.
func (a AtIdentifier) Normalize() AtIdentifier {
	if a.IsDID() {
		return a
	}
	return AtIdentifier(toLowerASCII(string(a)))
}
