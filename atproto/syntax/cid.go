package syntax

import (
	"fmt"
	"strings"
)

// Length bounds for the string form of a CID. The data model specification
// does not fix them; these match the reference implementations' syntax
// check and comfortably hold any real CIDv1 (atproto.com/specs/data-model).
const (
	CIDMinLength = 8
	CIDMaxLength = 256
)

// CID is the string form of a content identifier, as in the Lexicon "cid"
// format, such as "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm".
// Only the characters and length are checked here; decoding the binary
// form belongs to the data model package.
type CID string

// ParseCID checks s against the CID string syntax: 8 to 256 characters
// from A-Z a-z 0-9 + =, not beginning with "Qm" (CIDv0, which atproto does
// not use).
func ParseCID(s string) (CID, error) {
	if r := cidReason(s); r != "" {
		return "", newError("CID", s, r)
	}
	return CID(s), nil
}

// cidReason returns why s is not a CID string, or "" when it is one.
func cidReason(s string) string {
	if len(s) < CIDMinLength {
		return fmt.Sprintf("length %d is below the minimum of %d", len(s), CIDMinLength)
	}
	if len(s) > CIDMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), CIDMaxLength)
	}
	for i := 0; i < len(s); i++ {
		if charTable[s[i]]&cCID == 0 {
			return badByte("CID", s[i], i)
		}
	}
	if strings.HasPrefix(s, "Qm") {
		return "CIDv0 (\"Qm...\") is not supported; use CIDv1"
	}
	return ""
}

// String returns the CID string.
func (c CID) String() string { return string(c) }
