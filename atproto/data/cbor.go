package data

import (
	"fmt"
	"sync"
)

// CBORError reports DAG-CBOR input that is malformed or breaks one of the
// strict rules of the atproto profile. Offset is the position in the input
// of the item at fault.
type CBORError struct {
	Offset int
	Reason string
}

func (e *CBORError) Error() string {
	return fmt.Sprintf("data: cbor at byte %d: %s", e.Offset, e.Reason)
}

// CBORMarshaler is implemented by types that write themselves as DAG-CBOR,
// typically code generated from lexicons. The implementation must write
// exactly one item, with map keys in canonical order.
type CBORMarshaler interface {
	MarshalDAGCBOR(*Encoder) error
}

// CBORUnmarshaler is implemented by types that read themselves from
// DAG-CBOR. The implementation must read exactly one item.
type CBORUnmarshaler interface {
	UnmarshalDAGCBOR(*Decoder) error
}

var encoderPool = sync.Pool{New: func() any { return &Encoder{buf: make([]byte, 0, 1024)} }}

// MarshalCBOR encodes v as canonical DAG-CBOR. It accepts the generic
// data-model values (see Encoder.WriteValue), Blob, CID and Bytes, typed
// structs (by value or pointer, see UnmarshalCBORInto for the field rules)
// and CBORMarshaler implementations. Integers must lie within
// ±MaxSafeInt.
func MarshalCBOR(v any) ([]byte, error) {
	return marshalCBOR(v, false)
}

// marshalCBOR is MarshalCBOR with, when fullInt is set, the whole int64
// range allowed; the fuzz tests use it to re-encode what the decoder read.
func marshalCBOR(v any, fullInt bool) ([]byte, error) {
	e := encoderPool.Get().(*Encoder)
	e.Reset()
	e.fullInt = fullInt
	err := e.WriteValue(v)
	var out []byte
	if err == nil {
		out = make([]byte, len(e.buf))
		copy(out, e.buf)
	}
	if cap(e.buf) <= 1<<16 {
		e.fullInt = false
		e.Reset() // do not keep the caller's values alive
		encoderPool.Put(e)
	}
	return out, err
}

// UnmarshalCBOR decodes a DAG-CBOR block whose top-level item must be a
// map, as records are. The map is returned as it is even when it has the
// shape of a blob; nested blob maps become Blob values. Strings in the
// result share one copy of the input.
func UnmarshalCBOR(b []byte) (map[string]any, error) {
	d := newSharedDecoder(b)
	if len(b) > 0 && b[0]>>5 != majorMap {
		return nil, d.errorf(0, "top-level item is %s, not a map", d.describe(0))
	}
	m, _, _, err := d.readMap()
	if err != nil {
		return nil, err
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeCBOR decodes a DAG-CBOR block holding any single item into the
// generic data model: map[string]any, []any, string, int64, bool, nil,
// Bytes, CID and Blob.
func DecodeCBOR(b []byte) (any, error) {
	d := newSharedDecoder(b)
	v, err := d.ReadAny()
	if err != nil {
		return nil, err
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return v, nil
}

// UnmarshalCBORInto decodes a DAG-CBOR block into v, which must be a
// non-nil pointer. If v implements CBORUnmarshaler that is used; otherwise
// the pointed-to type is decoded by a plan built once per type with
// reflection and cached.
//
// Struct fields are named by their `cbor` tag, or failing that their
// `json` tag, or failing that the Go field name; ",omitempty" omits zero
// values when encoding and "-" skips a field. Supported field types are
// string, bool, all integer kinds (range-checked both ways), pointers,
// slices, map[string]T, structs, Bytes and []byte, CID, Blob, any (the
// generic data model) and types implementing the marshaler interfaces.
// Floats, fixed-size arrays, channels, functions and untagged embedded
// structs are refused. A field named "$type" must be a string, and is
// refused empty.
//
// When decoding, a struct is reset to its zero value first; absent fields
// stay zero, null is accepted only by pointers and any, and unknown keys
// are skipped though still fully validated. When encoding, a nil pointer
// is null, while nil slices and maps are written empty (omitempty leaves
// all three out).
func UnmarshalCBORInto(b []byte, v any) error {
	d := newSharedDecoder(b)
	if err := d.decodeInto(v); err != nil {
		return err
	}
	return d.Finish()
}
