package main

// lexutilSource is the runtime support package written to api/lexutil:
// helpers that generated marshalers call, and the Client interface that
// generated client functions take.
const lexutilSource = `// Package lexutil holds the run-time support of the generated API types:
// helpers called by generated DAG-CBOR and JSON marshalers, and the Client
// interface that generated XRPC client functions take.
package lexutil

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Kind tells an XRPC query from a procedure.
type Kind int

const (
	Query     Kind = iota // HTTP GET
	Procedure             // HTTP POST
)

// Client performs one XRPC call. params are the query parameters; input is
// nil, a value with a MarshalJSON method (JSON bodies) or a *RawBody; output
// is nil, a pointer to a value with an UnmarshalJSON method (JSON bodies) or
// an io.Writer that receives the raw response body.
type Client interface {
	Do(ctx context.Context, kind Kind, nsid string, params url.Values, input any, output any) error
}

// RawBody is a non-JSON request body.
type RawBody struct {
	Encoding string
	Body     io.Reader
}

// Marshaler is implemented by every generated type.
type Marshaler interface {
	MarshalDAGCBOR(*data.Encoder) error
}

// Unmarshaler is implemented by every generated type.
type Unmarshaler interface {
	UnmarshalDAGCBOR(*data.Decoder) error
}

// MarshalCBOR encodes v as one DAG-CBOR block.
func MarshalCBOR(v Marshaler) ([]byte, error) {
	e := data.NewEncoder(nil)
	if err := v.MarshalDAGCBOR(e); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// UnmarshalCBOR decodes one whole DAG-CBOR block into v.
func UnmarshalCBOR(b []byte, v Unmarshaler) error {
	d := data.NewDecoder(b)
	if err := v.UnmarshalDAGCBOR(d); err != nil {
		return err
	}
	return d.Finish()
}

// MarshalJSON writes v as atproto JSON, by way of its DAG-CBOR form and the
// generic data model.
func MarshalJSON(v Marshaler) ([]byte, error) {
	b, err := MarshalCBOR(v)
	if err != nil {
		return nil, err
	}
	g, err := data.DecodeCBOR(b)
	if err != nil {
		return nil, err
	}
	return data.MarshalJSON(g)
}

// UnmarshalJSON reads atproto JSON into v, by way of the generic data model
// and DAG-CBOR.
func UnmarshalJSON(b []byte, v Unmarshaler) error {
	g, err := data.DecodeJSON(b)
	if err != nil {
		return err
	}
	cb, err := data.MarshalCBOR(g)
	if err != nil {
		return err
	}
	return UnmarshalCBOR(cb, v)
}

// ErrEmptyUnion is returned when encoding a union value with no variant set.
var ErrEmptyUnion = errors.New("lexutil: union value has no variant set")

// UnionError reports a $type that a closed union does not list, or a
// union value that is not a map.
type UnionError struct {
	Union string
	Type  string
}

func (e *UnionError) Error() string {
	if e.Type == "" {
		return "lexutil: " + e.Union + ": union value is not an object with a $type"
	}
	return "lexutil: " + e.Union + ": $type " + e.Type + " is not a variant of this closed union"
}

// PeekType returns the "$type" of the map that d is about to read, or ""
// when the next item is not a map or has none, leaving d where it was.
// In DAG-CBOR order "$type" comes after all shorter keys and before every
// other key of five bytes, so the scan stops early.
func PeekType(d *data.Decoder) (string, error) {
	if d.PeekKind() != data.KindMap {
		return "", nil
	}
	saved := *d
	defer func() { *d = saved }()
	n, err := d.ReadMapHeader()
	if err != nil {
		return "", err
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return "", err
		}
		prev = k
		if string(k) == "$type" {
			return d.ReadString()
		}
		if len(k) >= 5 {
			return "", nil
		}
		if err := d.Skip(); err != nil {
			return "", err
		}
	}
	return "", nil
}

// ReadUnknownUnion reads a union value of a $type the union does not list,
// in the generic data model.
func ReadUnknownUnion(d *data.Decoder, union string) (map[string]any, error) {
	v, err := d.ReadAny()
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &UnionError{Union: union}
	}
	return m, nil
}

// KeyLess reports whether a sorts before b in DAG-CBOR map key order:
// shorter keys first, then bytewise.
func KeyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// SortedKeys returns the keys of extra in DAG-CBOR order, or nil when it is
// empty.
func SortedKeys(extra map[string]any) []string {
	if len(extra) == 0 {
		return nil
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return keys
}

// Count is the number of map entries a declared field adds when it is
// present: none when an extra entry under the same key is already counted.
func Count(present bool, extra map[string]any, key string) int {
	if !present {
		return 0
	}
	if _, ok := extra[key]; ok {
		return 0
	}
	return 1
}

// FlushExtra writes the extra entries (keys in DAG-CBOR order, from index i)
// that sort before key, and the one equal to key unless the declared field
// is present; it returns the index of the first entry not consumed.
func FlushExtra(e *data.Encoder, extra map[string]any, keys []string, i int, key string, present bool) (int, error) {
	for i < len(keys) && KeyLess(keys[i], key) {
		if err := writeEntry(e, keys[i], extra[keys[i]]); err != nil {
			return i, err
		}
		i++
	}
	if i < len(keys) && keys[i] == key {
		if !present {
			if err := writeEntry(e, key, extra[key]); err != nil {
				return i, err
			}
		}
		i++
	}
	return i, nil
}

// WriteRest writes the extra entries from index i on.
func WriteRest(e *data.Encoder, extra map[string]any, keys []string, i int) error {
	for ; i < len(keys); i++ {
		if err := writeEntry(e, keys[i], extra[keys[i]]); err != nil {
			return err
		}
	}
	return nil
}

func writeEntry(e *data.Encoder, k string, v any) error {
	if err := e.WriteKey(k); err != nil {
		return err
	}
	return e.WriteValue(v)
}

// ReadExtra reads the value of an undeclared key into extra.
func ReadExtra(d *data.Decoder, extra *map[string]any, key []byte) error {
	v, err := d.ReadAny()
	if err != nil {
		return err
	}
	if *extra == nil {
		*extra = make(map[string]any)
	}
	(*extra)[string(key)] = v
	return nil
}

// ReadNullExtra reads a null given for a declared field that has no way to
// hold it, keeping it in extra so that it is written back.
func ReadNullExtra(d *data.Decoder, extra *map[string]any, key string) error {
	if err := d.ReadNull(); err != nil {
		return err
	}
	if *extra == nil {
		*extra = make(map[string]any)
	}
	(*extra)[key] = nil
	return nil
}

// ReadBytes reads a byte string, never returning nil.
func ReadBytes(d *data.Decoder) (data.Bytes, error) {
	b, err := d.ReadBytes()
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}
`
