package syntax

import "fmt"

// RecordKeyMaxLength is the longest allowed record key: 512 characters
// (atproto.com/specs/record-key).
const RecordKeyMaxLength = 512

// RecordKey names a record within a collection of a repository. Record keys
// are case-sensitive.
type RecordKey string

// ParseRecordKey checks s against the general record key syntax: 1 to 512
// characters from A-Z a-z 0-9 . - _ : ~, and not "." or "..".
func ParseRecordKey(s string) (RecordKey, error) {
	if r := recordKeyReason(s); r != "" {
		return "", newError("record key", s, r)
	}
	return RecordKey(s), nil
}

// recordKeyReason returns why s is not a record key, or "" when it is one.
func recordKeyReason(s string) string {
	if len(s) == 0 {
		return "empty string"
	}
	if len(s) > RecordKeyMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), RecordKeyMaxLength)
	}
	for i := 0; i < len(s); i++ {
		if charTable[s[i]]&cRkey == 0 {
			return badByte("record key", s[i], i)
		}
	}
	if s == "." || s == ".." {
		return "\".\" and \"..\" are not allowed"
	}
	return ""
}

// String returns the record key.
func (k RecordKey) String() string { return string(k) }
