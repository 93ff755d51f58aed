package syntax

import "fmt"

// Length limits from the handle specification (atproto.com/specs/handle).
const (
	// HandleMaxLength is the longest allowed handle: 253 characters, the
	// DNS name limit.
	HandleMaxLength = 253
	// LabelMaxLength is the longest allowed label (segment between
	// periods) of a handle or NSID domain authority: 63 characters.
	LabelMaxLength = 63
)

// HandleInvalid is the special handle value that marks an account whose
// handle could not be verified. It is valid syntax, but must not be used as
// a real handle.
const HandleInvalid Handle = "handle.invalid"

// Handle is an atproto handle: a DNS hostname such as "alice.bsky.social".
// Handles are case-insensitive; Normalize gives the canonical lower-case
// form.
type Handle string

// ParseHandle checks s against the handle syntax. It accepts any letter
// case and reserved top-level domains (see AllowedTLD), as Lexicon syntax
// validation requires.
func ParseHandle(s string) (Handle, error) {
	if r := handleReason(s); r != "" {
		return "", newError("handle", s, r)
	}
	return Handle(s), nil
}

// handleReason returns why s is not a handle, or "" when it is one.
func handleReason(s string) string {
	if len(s) == 0 {
		return "empty string"
	}
	if len(s) > HandleMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), HandleMaxLength)
	}
	start, labels := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if charTable[c]&cLabel != 0 {
				continue
			}
			if c != '.' {
				return labelByteReason(s, start, i)
			}
		}
		if r := labelReason(s, start, i); r != "" {
			return r
		}
		labels++
		if i < len(s) {
			start = i + 1
		}
	}
	if labels < 2 {
		return "needs at least two labels; a bare top-level domain is not a handle"
	}
	if isDigit(s[start]) {
		return fmt.Sprintf("top-level domain %q starts with a digit", s[start:])
	}
	return ""
}

// labelReason checks the DNS label s[start:end]; "" means it is fine. The
// characters themselves have already been checked.
func labelReason(s string, start, end int) string {
	n := end - start
	switch {
	case n == 0 && start == 0:
		return "starts with '.'"
	case n == 0 && end == len(s):
		return "ends with '.'"
	case n == 0:
		return fmt.Sprintf("empty label at offset %d (consecutive periods)", start)
	case n > LabelMaxLength:
		return fmt.Sprintf("label %q is %d characters long, more than the maximum of %d", s[start:end], n, LabelMaxLength)
	case s[start] == '-':
		return fmt.Sprintf("label %q starts with '-'", s[start:end])
	case s[end-1] == '-':
		return fmt.Sprintf("label %q ends with '-'", s[start:end])
	}
	return ""
}

// labelByteReason describes the disallowed byte at s[at] inside the label
// that starts at start.
func labelByteReason(s string, start, at int) string {
	end := at
	for end < len(s) && s[end] != '.' {
		end++
	}
	return badByte(fmt.Sprintf("label %q", s[start:end]), s[at], at)
}

// String returns the handle as written.
func (h Handle) String() string { return string(h) }

// Normalize returns the handle in lower case, its canonical form.
func (h Handle) Normalize() Handle { return Handle(toLowerASCII(string(h))) }

// TLD returns the top-level domain (the last label), in lower case.
func (h Handle) TLD() string {
	s := string(h)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return toLowerASCII(s[i+1:])
		}
	}
	return toLowerASCII(s)
}

// disallowedTLDs lists the top-level domains that the handle specification
// reserves: handles under them pass syntax checks but must not be
// registered or resolved.
var disallowedTLDs = [...]string{"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"}

// AllowedTLD reports whether the handle's top-level domain may be used for
// a real account. It is false for the TLDs the handle specification
// reserves (.alt, .arpa, .example, .internal, .invalid, .local, .localhost
// and .onion), including for HandleInvalid.
func (h Handle) AllowedTLD() bool {
	s := string(h)
	i := len(s) - 1
	for i >= 0 && s[i] != '.' {
		i--
	}
	tld := s[i+1:]
	for _, d := range disallowedTLDs {
		if equalFoldASCII(tld, d) {
			return false
		}
	}
	return true
}

// IsInvalidHandle reports whether h is the special "handle.invalid" value,
// in any letter case.
func (h Handle) IsInvalidHandle() bool {
	return equalFoldASCII(string(h), string(HandleInvalid))
}
