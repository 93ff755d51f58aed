package data

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// CBOR major types, as the top three bits of an item's first byte.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// Fixed items of major type 7 and the link tag.
const (
	cborFalse = 0xf4
	cborTrue  = 0xf5
	cborNull  = 0xf6
	tagCID    = 42
)

// Encoder writes canonical DAG-CBOR by appending to a byte slice. Its
// methods write single items; containers are written as a header followed
// by their entries. Callers writing maps themselves must write the keys in
// DAG-CBOR order (shorter keys first, then bytewise); WriteValue and the
// typed paths do so on their own.
//
// The zero Encoder is ready to use.
type Encoder struct {
	buf     []byte
	keys    []mapEntry // scratch stack for sorting generic map entries
	depth   int
	fullInt bool // allow the whole int64 range (re-encoding decoded data)
}

// NewEncoder returns an Encoder that appends to buf.
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns the bytes written so far. The slice aliases the encoder's
// buffer until the next write.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes written so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the buffer, keeping its capacity.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.depth = 0
	clear(e.keys[:cap(e.keys)])
	e.keys = e.keys[:0]
}

func cborEncErr(format string, args ...any) error {
	return fmt.Errorf("data: cbor encode: "+format, args...)
}

// writeHead appends a minimal-length header.
func (e *Encoder) writeHead(major byte, n uint64) {
	m := major << 5
	switch {
	case n < 24:
		e.buf = append(e.buf, m|byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, m|24, byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		e.buf = append(e.buf, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendHead is writeHead for building constant byte strings.
func appendHead(b []byte, major byte, n uint64) []byte {
	e := Encoder{buf: b}
	e.writeHead(major, n)
	return e.buf
}

// WriteMapHeader starts a map of n entries; n keys and values must follow.
func (e *Encoder) WriteMapHeader(n int) error {
	if n < 0 || n > MaxContainerLen {
		return cborEncErr("map of %d entries (limit %d)", n, MaxContainerLen)
	}
	e.writeHead(majorMap, uint64(n))
	return nil
}

// WriteArrayHeader starts an array of n items.
func (e *Encoder) WriteArrayHeader(n int) error {
	if n < 0 || n > MaxContainerLen {
		return cborEncErr("array of %d items (limit %d)", n, MaxContainerLen)
	}
	e.writeHead(majorArray, uint64(n))
	return nil
}

// WriteString writes a text string, which must be valid UTF-8.
func (e *Encoder) WriteString(s string) error {
	if !utf8.ValidString(s) {
		return cborEncErr("string %q is not valid UTF-8", s)
	}
	e.writeHead(majorText, uint64(len(s)))
	e.buf = append(e.buf, s...)
	return nil
}

// WriteKey writes a map key: a valid UTF-8 string of at most MaxKeyLen
// bytes. It does not check the order of keys.
func (e *Encoder) WriteKey(k string) error {
	if len(k) > MaxKeyLen {
		return cborEncErr("map key of %d bytes (limit %d)", len(k), MaxKeyLen)
	}
	return e.WriteString(k)
}

// WriteInt writes an integer, which must lie within ±MaxSafeInt.
func (e *Encoder) WriteInt(v int64) error {
	if (v > MaxSafeInt || v < MinSafeInt) && !e.fullInt {
		return cborEncErr("integer %d is outside ±2^53-1", v)
	}
	if v >= 0 {
		e.writeHead(majorUint, uint64(v))
	} else {
		e.writeHead(majorNegInt, uint64(-1-v))
	}
	return nil
}

// writeUint writes an unsigned Go integer, range-checked like WriteInt.
func (e *Encoder) writeUint(v uint64) error {
	if v > math.MaxInt64 || (v > MaxSafeInt && !e.fullInt) {
		return cborEncErr("integer %d is outside ±2^53-1", v)
	}
	e.writeHead(majorUint, v)
	return nil
}

// WriteBool writes true or false.
func (e *Encoder) WriteBool(b bool) {
	if b {
		e.buf = append(e.buf, cborTrue)
	} else {
		e.buf = append(e.buf, cborFalse)
	}
}

// WriteNull writes null.
func (e *Encoder) WriteNull() { e.buf = append(e.buf, cborNull) }

// WriteBytes writes a byte string.
func (e *Encoder) WriteBytes(b []byte) {
	e.writeHead(majorBytes, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// WriteCID writes a link: tag 42 over a byte string holding 0x00 and the
// binary CID. The undefined CID is an error.
func (e *Encoder) WriteCID(c CID) error {
	if c.b == "" {
		return cborEncErr("undefined CID")
	}
	e.buf = append(e.buf, 0xd8, tagCID)
	e.writeHead(majorBytes, uint64(len(c.b)+1))
	e.buf = append(e.buf, 0)
	e.buf = append(e.buf, c.b...)
	return nil
}

// Constant encodings of the blob keys, in DAG-CBOR order.
var (
	keyRef      = appendHead(nil, majorText, 3)
	keyCid      = appendHead(nil, majorText, 3)
	keySize     = appendHead(nil, majorText, 4)
	keyType     = appendHead(nil, majorText, 5)
	keyMimeType = appendHead(nil, majorText, 8)
)

// WriteBlob writes a blob map: {"ref", "size", "$type": "blob",
// "mimeType"}, or for a legacy blob {"cid": "<cid string>", "mimeType"}.
func (e *Encoder) WriteBlob(b Blob) error {
	if b.Ref.b == "" {
		return cborEncErr("blob with undefined ref")
	}
	if b.Legacy {
		e.buf = append(e.buf, 0xa2)
		e.buf = append(append(e.buf, keyCid...), legacyCID...)
		if err := e.WriteString(b.Ref.String()); err != nil {
			return err
		}
		e.buf = append(append(e.buf, keyMimeType...), blobMime...)
		return e.WriteString(b.MimeType)
	}
	if b.Size < 0 {
		return cborEncErr("blob size %d is negative", b.Size)
	}
	e.buf = append(e.buf, 0xa4)
	e.buf = append(append(e.buf, keyRef...), blobRef...)
	if err := e.WriteCID(b.Ref); err != nil {
		return err
	}
	e.buf = append(append(e.buf, keySize...), blobSize...)
	if err := e.WriteInt(b.Size); err != nil {
		return err
	}
	e.buf = append(append(e.buf, keyType...), typeKey...)
	e.buf = append(append(e.buf, 0x64), blobType...)
	e.buf = append(append(e.buf, keyMimeType...), blobMime...)
	return e.WriteString(b.MimeType)
}

// WriteRaw appends bytes as they are. The caller vouches that they are
// canonical DAG-CBOR, such as a precomputed map key.
func (e *Encoder) WriteRaw(b []byte) { e.buf = append(e.buf, b...) }

// WriteValue writes any value MarshalCBOR accepts. The generic forms are
// nil, bool, string, int64, Bytes, CID, Blob, []any and map[string]any;
// besides those it takes the other Go integer types (range-checked),
// []byte, *CID, *Blob, []string, map[string]string, CBORMarshaler
// implementations, and structs, slices, maps and pointers of supported
// types through the typed path. Floats are refused: the data model has
// none. A map with a "$type" key must give it a non-empty string, and a
// map with "$type": "blob" must have a blob's shape.
func (e *Encoder) WriteValue(v any) error {
	switch x := v.(type) {
	case nil:
		e.WriteNull()
	case string:
		return e.WriteString(x)
	case int64:
		return e.WriteInt(x)
	case bool:
		e.WriteBool(x)
	case map[string]any:
		return e.writeMap(x)
	case []any:
		return e.writeArray(x)
	case CID:
		return e.WriteCID(x)
	case Blob:
		return e.WriteBlob(x)
	case Bytes:
		e.WriteBytes(x)
	case []byte:
		e.WriteBytes(x)
	case int:
		return e.WriteInt(int64(x))
	case int32:
		return e.WriteInt(int64(x))
	case int16:
		return e.WriteInt(int64(x))
	case int8:
		return e.WriteInt(int64(x))
	case uint:
		return e.writeUint(uint64(x))
	case uint64:
		return e.writeUint(x)
	case uint32:
		return e.writeUint(uint64(x))
	case uint16:
		return e.writeUint(uint64(x))
	case uint8:
		return e.writeUint(uint64(x))
	case *CID:
		if x == nil {
			e.WriteNull()
			return nil
		}
		return e.WriteCID(*x)
	case *Blob:
		if x == nil {
			e.WriteNull()
			return nil
		}
		return e.WriteBlob(*x)
	case []string:
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.WriteArrayHeader(len(x)); err != nil {
			return err
		}
		for _, s := range x {
			if err := e.WriteString(s); err != nil {
				return err
			}
		}
		e.depth--
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return e.writeMap(m)
	case float64, float32:
		return cborEncErr("floats are not allowed in the data model (%v)", x)
	case CBORMarshaler:
		return x.MarshalDAGCBOR(e)
	default:
		return e.writeReflect(v)
	}
	return nil
}

// Enter notes that a container is being written, failing beyond
// MaxDepth; Leave undoes it. Generated code for recursive types brackets
// nested values with them; WriteValue and the typed path do this
// themselves.
func (e *Encoder) Enter() error { return e.enter() }

// Leave undoes Enter.
func (e *Encoder) Leave() { e.depth-- }

func (e *Encoder) enter() error {
	e.depth++
	if e.depth > MaxDepth {
		return cborEncErr("nesting deeper than %d", MaxDepth)
	}
	return nil
}

func (e *Encoder) writeArray(a []any) error {
	if err := e.enter(); err != nil {
		return err
	}
	if err := e.WriteArrayHeader(len(a)); err != nil {
		return err
	}
	for _, v := range a {
		if err := e.WriteValue(v); err != nil {
			return err
		}
	}
	e.depth--
	return nil
}

// cborKeyLess is the DAG-CBOR map key order: shorter first, then bytewise.
func cborKeyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func cborKeyCompare(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// cborSortKeys puts keys in DAG-CBOR order; insertion sort wins for the small
// maps records are made of.
func cborSortKeys(keys []string) {
	if len(keys) > 12 {
		slices.SortFunc(keys, cborKeyCompare)
		return
	}
	for i := 1; i < len(keys); i++ {
		k := keys[i]
		j := i
		for j > 0 && cborKeyLess(k, keys[j-1]) {
			keys[j] = keys[j-1]
			j--
		}
		keys[j] = k
	}
}

func (e *Encoder) writeMap(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	if t, ok := m[typeKey]; ok {
		if err := checkType(m); err != nil {
			return cborEncErr("%v", err)
		}
		if t == blobType {
			if _, _, err := blobFromMap(m); err != nil {
				return cborEncErr("%v", err)
			}
		}
	}
	if err := e.WriteMapHeader(len(m)); err != nil {
		return err
	}
	start := len(e.keys)
	for k, v := range m {
		e.keys = append(e.keys, mapEntry{k, v})
	}
	sortEntries(e.keys[start:])
	for i := start; i < start+len(m); i++ {
		ent := &e.keys[i]
		if err := e.WriteKey(ent.k); err != nil {
			e.keys = e.keys[:start]
			return err
		}
		if err := e.WriteValue(ent.v); err != nil {
			e.keys = e.keys[:start]
			return err
		}
	}
	e.keys = e.keys[:start]
	e.depth--
	return nil
}

// mapEntry is one entry of a generic map being written.
type mapEntry struct {
	k string
	v any
}

// sortEntries is cborSortKeys for map entries.
func sortEntries(ents []mapEntry) {
	if len(ents) > 12 {
		slices.SortFunc(ents, func(a, b mapEntry) int { return cborKeyCompare(a.k, b.k) })
		return
	}
	for i := 1; i < len(ents); i++ {
		ent := ents[i]
		j := i
		for j > 0 && cborKeyLess(ent.k, ents[j-1].k) {
			ents[j] = ents[j-1]
			j--
		}
		ents[j] = ent
	}
}
