package syntax

import (
	"fmt"
	"strconv"
)

// maxErrorInput is how many bytes of a rejected input an Error keeps.
const maxErrorInput = 80

// Error reports a string that failed to parse as an atproto identifier.
type Error struct {
	// Kind names the identifier type, such as "handle" or "AT-URI".
	Kind string
	// Input is the rejected string, truncated when it is long.
	Input string
	// Reason says which rule the input broke.
	Reason string
}

// Error formats the error as: invalid KIND "INPUT": REASON.
func (e *Error) Error() string {
	return "invalid " + e.Kind + " " + strconv.Quote(e.Input) + ": " + e.Reason
}

// newError builds an *Error, truncating long inputs.
func newError(kind, input, reason string) *Error {
	if len(input) > maxErrorInput {
		input = input[:maxErrorInput] + "..."
	}
	return &Error{Kind: kind, Input: input, Reason: reason}
}

// describeByte names a byte for an error message: printable ASCII is shown
// quoted, anything else in hex.
func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	if c >= 0x80 {
		return fmt.Sprintf("non-ASCII byte 0x%02x", c)
	}
	return fmt.Sprintf("control byte 0x%02x", c)
}

// badByte is the common reason for a disallowed byte at an offset.
func badByte(what string, c byte, at int) string {
	return fmt.Sprintf("%s contains %s at offset %d", what, describeByte(c), at)
}

// Character classes, as bits in charTable.
const (
	cLower  = 1 << iota // a-z
	cUpper              // A-Z
	cDigit              // 0-9
	cHyphen             // -
	cDIDExt             // . _ : % -  (DID identifier punctuation)
	cRkey               // A-Z a-z 0-9 . - _ : ~
	cCID                // A-Z a-z 0-9 + =
	cGraph              // printable ASCII except space (0x21-0x7e)

	cAlpha = cLower | cUpper
	cAlnum = cAlpha | cDigit
	cLabel = cAlnum | cHyphen
	cDID   = cAlnum | cDIDExt
)

var charTable = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower | cRkey | cCID
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper | cRkey | cCID
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cRkey | cCID
	}
	t['-'] |= cHyphen | cDIDExt | cRkey
	for _, c := range "._:%" {
		t[c] |= cDIDExt
	}
	for _, c := range "._:~" {
		t[c] |= cRkey
	}
	t['+'] |= cCID
	t['='] |= cCID
	for c := 0x21; c <= 0x7e; c++ {
		t[c] |= cGraph
	}
	return t
}()

func isAlpha(c byte) bool { return charTable[c]&cAlpha != 0 }
func isDigit(c byte) bool { return c-'0' < 10 }
func isAlnum(c byte) bool { return charTable[c]&cAlnum != 0 }

// hasUpper reports whether s holds an ASCII upper-case letter.
func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c-'A' < 26 {
			return true
		}
	}
	return false
}

// toLowerASCII lower-cases ASCII letters, returning s itself when there is
// nothing to change.
func toLowerASCII(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c-'A' < 26 {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// equalFoldASCII compares two strings ignoring ASCII case.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x-'A' < 26 {
			x += 'a' - 'A'
		}
		if y-'A' < 26 {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
