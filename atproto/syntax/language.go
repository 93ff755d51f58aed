package syntax

import "fmt"

// Language is a BCP 47 language tag (RFC 5646), such as "en", "pt-BR" or
// "hy-Latn-IT-arevela", as used by the Lexicon "language" format.
type Language string

// irregularTags are the grandfathered tags of RFC 5646 section 2.2.8 that
// do not fit the langtag grammar. (The "regular" grandfathered tags, such
// as "zh-hakka", already do.)
var irregularTags = [...]string{
	"en-GB-oed", "i-ami", "i-bnn", "i-default", "i-enochian", "i-hak",
	"i-klingon", "i-lux", "i-mingo", "i-navajo", "i-pwn", "i-tao", "i-tay",
	"i-tsu", "sgn-BE-FR", "sgn-BE-NL", "sgn-CH-DE",
}

// ParseLanguage checks s against the RFC 5646 Language-Tag grammar
// (langtag, private use or grandfathered), written by hand. It also rejects
// tags that are well-formed but invalid because a variant subtag or an
// extension singleton is repeated (compared without regard to case, RFC
// 5646 section 2.2.9). In addition, as atproto data expects, the primary
// language subtag must be lower-case, and the 4-letter primary subtags the
// RFC reserves for future use are rejected. Other subtags may use any case.
func ParseLanguage(s string) (Language, error) {
	if r := languageReason(s); r != "" {
		return "", newError("language", s, r)
	}
	return Language(s), nil
}

// subtagEnd returns the index of the '-' ending the subtag that starts at
// i, or len(s).
func subtagEnd(s string, i int) int {
	for i < len(s) && s[i] != '-' {
		i++
	}
	return i
}

// Stages of a langtag, in the order its parts may appear.
const (
	lsLanguage  = iota // after a 2-3 letter language: extlang may follow
	lsExtlang          // after extlangs: script may follow
	lsScript           // after script: region may follow
	lsRegion           // after region: variants may follow
	lsVariant          // after variants
	lsExtension        // inside extensions
)

// languageReason returns why s is not a well-formed and valid language
// tag, or "" when it is one.
func languageReason(s string) string {
	if len(s) == 0 {
		return "empty string"
	}
	for _, g := range irregularTags {
		if len(g) == len(s) && s[0]-'a' < 26 && equalFoldASCII(g, s) {
			return ""
		}
	}
	end := subtagEnd(s, 0)
	first := s[:end]
	if len(first) == 0 {
		return "starts with '-'"
	}
	if first == "x" || first == "X" {
		return privateUseReason(s, end)
	}
	for i := 0; i < len(first); i++ {
		c := first[i]
		if c-'a' < 26 {
			continue
		}
		if c-'A' < 26 {
			return fmt.Sprintf("primary language subtag %q must be lower-case", first)
		}
		return badByte(fmt.Sprintf("primary language subtag %q", first), c, i) + "; it must be letters only"
	}
	stage := lsExtlang
	switch n := len(first); {
	case n == 1:
		return fmt.Sprintf("primary language subtag %q is too short (2-3 or 5-8 letters)", first)
	case n <= 3:
		stage = lsLanguage
	case n == 4:
		return fmt.Sprintf("primary language subtag %q: 4-letter language subtags are reserved", first)
	case n > 8:
		return fmt.Sprintf("primary language subtag %q is too long (2-3 or 5-8 letters)", first)
	}
	extlangs := 0
	variantStart := -1 // offset of the first variant subtag
	variants := 0
	var seen map[string]struct{}
	var singletons uint64
	for i := end; i < len(s); {
		// s[i] is '-'.
		start := i + 1
		end = subtagEnd(s, start)
		sub := s[start:end]
		if len(sub) == 0 {
			if end == len(s) {
				return "ends with '-'"
			}
			return fmt.Sprintf("empty subtag at offset %d", start)
		}
		if len(sub) > 8 {
			return fmt.Sprintf("subtag %q is longer than 8 characters", sub)
		}
		alpha, digits := 0, 0
		for k := 0; k < len(sub); k++ {
			switch c := sub[k]; {
			case isAlpha(c):
				alpha++
			case isDigit(c):
				digits++
			default:
				return badByte(fmt.Sprintf("subtag %q", sub), c, start+k)
			}
		}
		n := len(sub)
		switch {
		case n == 1:
			c := sub[0] | 0x20
			if c == 'x' {
				return privateUseReason(s, end)
			}
			bit := uint64(1) << singletonIndex(c)
			if singletons&bit != 0 {
				return fmt.Sprintf("extension singleton %q is repeated", sub)
			}
			singletons |= bit
			// At least one 2-8 character subtag must follow.
			ns := end + 1
			ne := subtagEnd(s, ns)
			if end == len(s) || ne-ns < 2 {
				return fmt.Sprintf("extension %q needs at least one subtag of 2-8 characters", sub)
			}
			stage = lsExtension
		case stage == lsExtension:
			if n < 2 {
				return fmt.Sprintf("extension subtag %q is shorter than 2 characters", sub)
			}
		case stage == lsLanguage && n == 3 && alpha == 3 && extlangs < 3:
			extlangs++
		case stage <= lsExtlang && n == 4 && alpha == 4:
			stage = lsScript
		case stage <= lsScript && ((n == 2 && alpha == 2) || (n == 3 && digits == 3)):
			stage = lsRegion
		case n >= 5 || (n == 4 && isDigit(sub[0])):
			if variantStart < 0 {
				variantStart = start
			}
			variants++
			// Compare against the earlier variants by scanning back while
			// there are few of them; past that, switch to a set so that a
			// hostile tag with many variants stays linear.
			if variants > maxScannedVariants {
				if seen == nil {
					seen = variantSet(s, variantStart, start)
				}
				key := toLowerASCII(sub)
				if _, dup := seen[key]; dup {
					return fmt.Sprintf("variant subtag %q is repeated", sub)
				}
				seen[key] = struct{}{}
			} else if variantRepeated(s, variantStart, start, sub) {
				return fmt.Sprintf("variant subtag %q is repeated", sub)
			}
			stage = lsVariant
		default:
			return fmt.Sprintf("subtag %q at offset %d is out of place or malformed", sub, start)
		}
		i = end
	}
	return ""
}

// singletonIndex maps a lower-case letter or digit to 0..35.
func singletonIndex(c byte) uint {
	if isDigit(c) {
		return uint(c - '0')
	}
	return uint(c-'a') + 10
}

// maxScannedVariants is how many variant subtags languageReason compares
// pairwise before it switches to a set.
const maxScannedVariants = 16

// variantSet returns the lower-cased variant subtags in s[from:to].
func variantSet(s string, from, to int) map[string]struct{} {
	m := make(map[string]struct{})
	for i := from; i < to; {
		e := subtagEnd(s, i)
		m[toLowerASCII(s[i:e])] = struct{}{}
		i = e + 1
	}
	return m
}

// variantRepeated reports whether sub equals, ignoring case, one of the
// variant subtags in s[from:to] (a run of variants, each followed by '-').
func variantRepeated(s string, from, to int, sub string) bool {
	for i := from; i < to; {
		e := subtagEnd(s, i)
		if equalFoldASCII(s[i:e], sub) {
			return true
		}
		i = e + 1
	}
	return false
}

// privateUseReason checks the private-use part of a tag: the 'x' singleton
// ends at end, and one or more 1-8 character subtags must follow.
func privateUseReason(s string, end int) string {
	if end == len(s) {
		return "private-use 'x' needs at least one subtag"
	}
	for i := end; i < len(s); {
		start := i + 1
		e := subtagEnd(s, start)
		sub := s[start:e]
		if len(sub) == 0 {
			if e == len(s) {
				return "ends with '-'"
			}
			return fmt.Sprintf("empty subtag at offset %d", start)
		}
		if len(sub) > 8 {
			return fmt.Sprintf("private-use subtag %q is longer than 8 characters", sub)
		}
		for k := 0; k < len(sub); k++ {
			if !isAlnum(sub[k]) {
				return badByte(fmt.Sprintf("subtag %q", sub), sub[k], start+k)
			}
		}
		i = e
	}
	return ""
}

// String returns the language tag.
func (l Language) String() string { return string(l) }
