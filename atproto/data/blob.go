package data

import "fmt"

// Keys of a blob object in the data model.
const (
	typeKey   = "$type"
	blobType  = "blob"
	blobRef   = "ref"
	blobMime  = "mimeType"
	blobSize  = "size"
	legacyCID = "cid"
)

// checkType checks the "$type" field of a map, if it has one: the data
// model requires a non-empty string.
func checkType(m map[string]any) error {
	v, ok := m[typeKey]
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return fmt.Errorf("$type must be a string, not %s", kindName(v))
	}
	if s == "" {
		return fmt.Errorf("$type must not be empty")
	}
	return nil
}

// blobFromMap recognises a blob object in a generic map whose links have
// already been turned into CIDs. It returns ok=false when m is not a blob
// at all, and an error when m says it is a blob ("$type": "blob") but does
// not have a blob's shape.
func blobFromMap(m map[string]any) (Blob, bool, error) {
	if t, _ := m[typeKey].(string); t == blobType {
		ref, ok := m[blobRef].(CID)
		if !ok {
			return Blob{}, false, fmt.Errorf("blob: ref must be a link, not %s", kindName(m[blobRef]))
		}
		mime, ok := m[blobMime].(string)
		if !ok {
			return Blob{}, false, fmt.Errorf("blob: mimeType must be a string, not %s", kindName(m[blobMime]))
		}
		size, ok := m[blobSize].(int64)
		if !ok {
			return Blob{}, false, fmt.Errorf("blob: size must be an integer, not %s", kindName(m[blobSize]))
		}
		if size < 0 {
			return Blob{}, false, fmt.Errorf("blob: size %d is negative", size)
		}
		if len(m) != 4 {
			for k := range m {
				if k != typeKey && k != blobRef && k != blobMime && k != blobSize {
					return Blob{}, false, fmt.Errorf("blob: unexpected field %q", k)
				}
			}
		}
		return Blob{Ref: ref, MimeType: mime, Size: size}, true, nil
	}
	// The legacy form: exactly {"cid": "<cid string>", "mimeType": ...}.
	if len(m) == 2 {
		cs, ok1 := m[legacyCID].(string)
		mime, ok2 := m[blobMime].(string)
		if ok1 && ok2 {
			// Only the canonical string form, so that writing the blob
			// back gives the same bytes (ParseCID also reads base58btc).
			if c, err := ParseCID(cs); err == nil && c.String() == cs {
				return Blob{Ref: c, MimeType: mime, Legacy: true}, true, nil
			}
		}
	}
	return Blob{}, false, nil
}

// kindName names the data-model kind of a generic value, for errors.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, int, int32, uint64:
		return "an integer"
	case float64, float32:
		return "a float"
	case string:
		return "a string"
	case Bytes:
		return "bytes"
	case CID:
		return "a link"
	case Blob:
		return "a blob"
	case []any:
		return "an array"
	case map[string]any:
		return "a map"
	default:
		return fmt.Sprintf("a Go %T", v)
	}
}
