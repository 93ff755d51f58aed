package syntax

import (
	"fmt"
	"strings"
)

// ATURIMaxLength is the longest allowed AT-URI: 8 kilobytes
// (atproto.com/specs/at-uri-scheme).
const ATURIMaxLength = 8 * 1024

// ATURI is an AT-URI in the restricted form Lexicon "at-uri" fields use:
//
//	at://AUTHORITY[/COLLECTION[/RKEY]]
//
// where AUTHORITY is a handle or DID, COLLECTION an NSID and RKEY a record
// key. Queries, fragments, trailing slashes and further path segments are
// rejected.
type ATURI string

// ParseATURI checks s against the restricted AT-URI syntax.
func ParseATURI(s string) (ATURI, error) {
	if r := atURIReason(s); r != "" {
		// A query or fragment makes some component fail; name the real
		// cause instead of the symptom.
		if strings.HasPrefix(s, "at://") && len(s) <= ATURIMaxLength {
			if i := strings.IndexAny(s, "?#"); i >= 0 {
				r = fmt.Sprintf("contains %s at offset %d; queries and fragments are not allowed", describeByte(s[i]), i)
			}
		}
		return "", newError("AT-URI", s, r)
	}
	return ATURI(s), nil
}

// atURIReason returns why s is not an AT-URI, or "" when it is one.
func atURIReason(s string) string {
	if len(s) > ATURIMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), ATURIMaxLength)
	}
	if !strings.HasPrefix(s, "at://") {
		if len(s) >= 5 && equalFoldASCII(s[:5], "at://") {
			return "the \"at://\" scheme must be lower-case"
		}
		return "does not start with \"at://\""
	}
	rest := s[5:]
	slash := strings.IndexByte(rest, '/')
	auth := rest
	if slash >= 0 {
		auth = rest[:slash]
	}
	if auth == "" {
		return "empty authority"
	}
	if r := authorityReason(auth); r != "" {
		return r
	}
	if slash < 0 {
		return ""
	}
	rest = rest[slash+1:]
	if rest == "" {
		return "trailing '/' after the authority"
	}
	slash = strings.IndexByte(rest, '/')
	coll := rest
	if slash >= 0 {
		coll = rest[:slash]
	}
	if coll == "" {
		return "empty collection segment ('//')"
	}
	if r := nsidReason(coll); r != "" {
		return "collection " + quoteShort(coll) + " is not a valid NSID: " + r
	}
	if slash < 0 {
		return ""
	}
	rkey := rest[slash+1:]
	if rkey == "" {
		return "trailing '/' after the collection"
	}
	if i := strings.IndexByte(rkey, '/'); i >= 0 {
		if i == len(rkey)-1 {
			return "trailing '/' after the record key"
		}
		return "too many path segments; only /COLLECTION/RKEY is allowed"
	}
	if r := recordKeyReason(rkey); r != "" {
		return "record key " + quoteShort(rkey) + " is not valid: " + r
	}
	return ""
}

// authorityReason checks the authority part of an AT-URI.
func authorityReason(auth string) string {
	if strings.HasPrefix(auth, "did:") {
		if r := didReason(auth); r != "" {
			return "authority is not a valid DID: " + r
		}
		return ""
	}
	if r := handleReason(auth); r != "" {
		return "authority is not a valid DID or handle: " + r
	}
	return ""
}

// quoteShort quotes s for an error message, shortening it when long.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// String returns the AT-URI.
func (u ATURI) String() string { return string(u) }

// split returns the authority and the path (without its leading slash).
func (u ATURI) split() (auth, path string) {
	s := strings.TrimPrefix(string(u), "at://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Authority returns the handle or DID the AT-URI points into.
func (u ATURI) Authority() AtIdentifier {
	auth, _ := u.split()
	return AtIdentifier(auth)
}

// Collection returns the collection NSID, or "" when the AT-URI has none.
func (u ATURI) Collection() NSID {
	_, path := u.split()
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[:i]
	}
	return NSID(path)
}

// RecordKey returns the record key, or "" when the AT-URI has none.
func (u ATURI) RecordKey() RecordKey {
	_, path := u.split()
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return RecordKey(path[i+1:])
	}
	return ""
}

// Path returns the path part with its leading slash, such as
// "/app.bsky.feed.post/3jzfcijpj2z2a", or "" when there is none.
func (u ATURI) Path() string {
	s := strings.TrimPrefix(string(u), "at://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[i:]
	}
	return ""
}

// Normalize returns the AT-URI with a handle authority lower-cased and the
// collection's domain authority lower-cased; DIDs and record keys are
// case-sensitive and kept as they are.
func (u ATURI) Normalize() ATURI {
	auth := u.Authority().Normalize()
	coll := u.Collection().Normalize()
	if string(auth) == string(u.Authority()) && coll == u.Collection() {
		return u
	}
	out := "at://" + string(auth)
	if coll != "" {
		out += "/" + string(coll)
		if rk := u.RecordKey(); rk != "" {
			out += "/" + string(rk)
		}
	}
	return ATURI(out)
}
