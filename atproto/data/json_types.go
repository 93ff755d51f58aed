package data

import "bytes"

// JSON methods, so that typed structs used with encoding/json write and
// read links, bytes and blobs the atproto way. Each reads through the same
// scanner as DecodeJSON, so the rules are the same. A JSON null leaves the
// value unchanged, as encoding/json expects of an Unmarshaler.

func jsonIsNull(b []byte) bool {
	return string(bytes.TrimSpace(b)) == "null"
}

// jsonWrongKind is the error for a JSON value of the wrong data-model kind.
func jsonWrongKind(want string, got any) error {
	return (&JSONError{Msg: "expected " + want + ", found " + kindName(got)}).finish()
}

// MarshalJSON writes the CID as {"$link": "<cid>"}. An undefined CID is an
// error: a field that may be absent should be a *CID, or use omitzero.
func (c CID) MarshalJSON() ([]byte, error) {
	return MarshalJSON(c)
}

// UnmarshalJSON reads {"$link": "<cid>"}.
func (c *CID) UnmarshalJSON(b []byte) error {
	if jsonIsNull(b) {
		return nil
	}
	v, err := DecodeJSON(b)
	if err != nil {
		return err
	}
	l, ok := v.(CID)
	if !ok {
		return jsonWrongKind("a link", v)
	}
	*c = l
	return nil
}

// MarshalJSON writes {"$bytes": "<base64>"}, without padding. Nil is
// written as empty bytes.
func (b Bytes) MarshalJSON() ([]byte, error) {
	return MarshalJSON(b)
}

// UnmarshalJSON reads {"$bytes": "<base64>"}, with or without padding.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if jsonIsNull(data) {
		return nil
	}
	v, err := DecodeJSON(data)
	if err != nil {
		return err
	}
	bs, ok := v.(Bytes)
	if !ok {
		return jsonWrongKind("bytes", v)
	}
	*b = bs
	return nil
}

// MarshalJSON writes the blob in the form it holds: the standard
// {"$type": "blob", ...} object, or {"cid", "mimeType"} when Legacy is set.
func (b Blob) MarshalJSON() ([]byte, error) {
	return MarshalJSON(b)
}

// UnmarshalJSON reads a blob in either form.
func (b *Blob) UnmarshalJSON(data []byte) error {
	if jsonIsNull(data) {
		return nil
	}
	v, err := DecodeJSON(data)
	if err != nil {
		return err
	}
	bl, ok := v.(Blob)
	if !ok {
		return jsonWrongKind("a blob", v)
	}
	*b = bl
	return nil
}
