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

// MarshalCBOR encodes v as one DAG-CBOR block, as data.MarshalCBOR does
// (with a pooled Encoder).
func MarshalCBOR(v Marshaler) ([]byte, error) {
	return data.MarshalCBOR(v)
}

// UnmarshalCBOR decodes one whole DAG-CBOR block into v, as
// data.UnmarshalCBORInto does: the strings of v are sliced from one copy
// of b, which they keep alive.
func UnmarshalCBOR(b []byte, v Unmarshaler) error {
	return data.UnmarshalCBORInto(b, v)
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
func PeekType(d *data.Decoder) (string, error) {
	t, err := PeekTypeView(d)
	return string(t), err
}

// PeekTypeView is PeekType returning the "$type" without copying it: the
// result aliases the input and is only valid as long as it is; it is empty
// when there is none. In DAG-CBOR order "$type" comes after all shorter
// keys and before every other key of five bytes, so the scan stops there.
// It allocates nothing unless the map is malformed.
func PeekTypeView(d *data.Decoder) ([]byte, error) {
	if d.PeekKind() != data.KindMap {
		return nil, nil
	}
	saved := *d
	t, err := scanType(d)
	*d = saved
	if err == nil {
		return t, nil
	}
	// The quick scan checks less than Skip and has its own limit on string
	// length: repeat it with full checks, for the error they give.
	t, err = scanTypeChecked(d)
	*d = saved
	return t, err
}

// scanType reads map entries up to "$type" and returns its value, viewed.
// Values before it are passed over by skipView.
func scanType(d *data.Decoder) ([]byte, error) {
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, err
		}
		prev = k
		if len(k) >= 5 {
			if string(k) != "$type" {
				return nil, nil
			}
			return readStringView(d)
		}
		if err := skipView(d); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// scanTypeChecked is scanType validating skipped values fully.
func scanTypeChecked(d *data.Decoder) ([]byte, error) {
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, err
		}
		prev = k
		if len(k) >= 5 {
			if string(k) != "$type" {
				return nil, nil
			}
			s, err := d.ReadString()
			return []byte(s), err
		}
		if err := d.Skip(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// readStringView reads a text string without copying it. ReadMapKey with no
// previous key is exactly that, for strings up to data.MaxKeyLen bytes.
func readStringView(d *data.Decoder) ([]byte, error) {
	return d.ReadMapKey(nil)
}

// skipView passes over one item without allocating. It is only used ahead
// of a full read of the same bytes, which does every check Skip does.
func skipView(d *data.Decoder) error {
	var err error
	switch d.PeekKind() {
	case data.KindString:
		_, err = readStringView(d)
	case data.KindInt:
		_, err = d.ReadInt()
	case data.KindBool:
		_, err = d.ReadBool()
	case data.KindNull:
		err = d.ReadNull()
	case data.KindBytes:
		_, err = d.ReadBytesView()
	case data.KindLink:
		_, err = d.ReadCIDBytes()
	case data.KindArray:
		var n int
		if n, err = d.ReadArrayHeader(); err != nil {
			return err
		}
		if err = d.Enter(); err != nil {
			return err
		}
		for range n {
			if err = skipView(d); err != nil {
				return err
			}
		}
		d.Leave()
	case data.KindMap:
		var n int
		if n, err = d.ReadMapHeader(); err != nil {
			return err
		}
		if err = d.Enter(); err != nil {
			return err
		}
		var prev []byte
		for range n {
			if prev, err = d.ReadMapKey(prev); err != nil {
				return err
			}
			if err = skipView(d); err != nil {
				return err
			}
		}
		d.Leave()
	default:
		err = d.Skip()
	}
	return err
}

// NewWith returns a new zero T and a new zero P, allocated together.
func NewWith[T, P any]() (*T, *P) {
	x := new(With[T, P])
	return &x.V, &x.P
}

// With is a T allocated along with P, the storage of its parts.
type With[T, P any] struct {
	V T
	P P
}

// NewPtrsWith is NewPtrs allocating a zero P along with each T: the T at
// index i of the first result is the V of the second's element i.
func NewPtrsWith[T, P any](n int) ([]*T, []With[T, P]) {
	if n == 1 {
		x := new(struct {
			p [1]*T
			w [1]With[T, P]
		})
		x.p[0] = &x.w[0].V
		return x.p[:], x.w[:]
	}
	p := make([]*T, n)
	w := make([]With[T, P], n)
	for i := range p {
		p[i] = &w[i].V
	}
	return p, w
}

// NewPtrs returns n pointers to distinct zero Ts, allocated together: in
// one allocation when n is 1, in two otherwise, instead of n+1.
func NewPtrs[T any](n int) []*T {
	if n == 1 {
		x := new(struct {
			p [1]*T
			v T
		})
		x.p[0] = &x.v
		return x.p[:]
	}
	p := make([]*T, n)
	v := make([]T, n)
	for i := range p {
		p[i] = &v[i]
	}
	return p
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
