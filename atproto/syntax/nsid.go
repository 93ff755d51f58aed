package syntax

import (
	"fmt"
	"strings"
)

// Length limits from the NSID specification (atproto.com/specs/nsid).
const (
	// NSIDMaxLength is the longest allowed NSID: 317 characters.
	NSIDMaxLength = 317
	// NSIDNameMaxLength is the longest allowed name segment: 63 characters.
	NSIDNameMaxLength = 63
)

// NSID is a namespaced identifier such as "app.bsky.feed.post": a domain
// authority in reversed order ("app.bsky.feed") followed by a name
// ("post"). The authority is case-insensitive; the name is case-sensitive.
type NSID string

// ParseNSID checks s against the NSID syntax. Fragments ("#main") and glob
// patterns ("com.example.*") are not NSIDs and are rejected.
func ParseNSID(s string) (NSID, error) {
	if r := nsidReason(s); r != "" {
		return "", newError("NSID", s, r)
	}
	return NSID(s), nil
}

// nsidReason returns why s is not an NSID, or "" when it is one.
func nsidReason(s string) string {
	if len(s) == 0 {
		return "empty string"
	}
	if len(s) > NSIDMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), NSIDMaxLength)
	}
	// The specification also caps the domain authority at 253 characters,
	// but the interop vectors (and the reference implementations) accept
	// longer ones within the overall limit, so only that limit is applied.
	start, segs := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if charTable[c]&cLabel != 0 {
			continue
		}
		if c != '.' {
			if c == '#' {
				return fmt.Sprintf("contains '#' at offset %d; fragments are not part of an NSID", i)
			}
			return labelByteReason(s, start, i)
		}
		if r := labelReason(s, start, i); r != "" {
			return r
		}
		if segs == 0 && isDigit(s[0]) {
			return fmt.Sprintf("first segment %q (the top-level domain) starts with a digit", s[:i])
		}
		segs++
		start = i + 1
	}
	if segs < 2 {
		if start == len(s) && segs > 0 {
			return "ends with '.'"
		}
		return "needs at least three segments (two-part domain authority and a name)"
	}
	name := s[start:]
	switch {
	case len(name) == 0:
		return "ends with '.'"
	case len(name) > NSIDNameMaxLength:
		return fmt.Sprintf("name %q is %d characters long, more than the maximum of %d", name, len(name), NSIDNameMaxLength)
	case !isAlpha(name[0]):
		return fmt.Sprintf("name %q does not start with a letter", name)
	}
	for i := 1; i < len(name); i++ {
		if !isAlnum(name[i]) {
			return badByte(fmt.Sprintf("name %q", name), name[i], start+i) + "; names are letters and digits only"
		}
	}
	return ""
}

// String returns the NSID as written.
func (n NSID) String() string { return string(n) }

// Name returns the final segment, such as "post" for "app.bsky.feed.post".
func (n NSID) Name() string {
	s := string(n)
	return s[strings.LastIndexByte(s, '.')+1:]
}

// Authority returns the domain authority as an ordinary lower-case domain
// name: "feed.bsky.app" for "app.bsky.feed.post".
func (n NSID) Authority() string {
	s := string(n)
	end := strings.LastIndexByte(s, '.')
	if end <= 0 {
		return ""
	}
	b := make([]byte, 0, end)
	for end > 0 {
		start := strings.LastIndexByte(s[:end], '.') + 1
		if len(b) > 0 {
			b = append(b, '.')
		}
		for i := start; i < end; i++ {
			c := s[i]
			if c-'A' < 26 {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		end = start - 1
	}
	return string(b)
}

// Normalize lower-cases the domain authority and keeps the name as it is.
func (n NSID) Normalize() NSID {
	s := string(n)
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 || !hasUpper(s[:dot]) {
		return n
	}
	return NSID(toLowerASCII(s[:dot]) + s[dot:])
}
