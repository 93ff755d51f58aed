package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Decoder reads strict DAG-CBOR from a byte slice. It accepts only what
// Encoder writes: minimal headers, definite lengths, no floats or simple
// values other than false, true and null, no tags but 42 (links), string
// map keys in canonical order without duplicates, valid UTF-8, integers in
// int64 range, and the limits MaxDepth, MaxContainerLen and MaxKeyLen.
// Every length is checked against the remaining input before anything is
// allocated. Errors are *CBORError values giving the offset of the item at
// fault; after an error the Decoder should be dropped.
type Decoder struct {
	buf []byte
	// str, when shared is set, is a copy of buf from which decoded strings
	// and CIDs are sliced, so that they cost no allocation of their own.
	str    string
	shared bool
	off    int
	depth  int
}

// NewDecoder returns a Decoder reading b from the start. Strings it
// returns are copied out of b one by one.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// newSharedDecoder makes one string copy of b up front and slices every
// decoded string from it: one allocation instead of one per string, at the
// price of the strings keeping the whole copy alive.
func newSharedDecoder(b []byte) *Decoder {
	return &Decoder{buf: b, str: string(b), shared: true}
}

// Offset returns the position of the next item in the input.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the number of bytes not yet read.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Finish reports an error if input remains after the items read.
func (d *Decoder) Finish() error {
	if d.off != len(d.buf) {
		return d.errorf(d.off, "%d trailing bytes after the top-level item", len(d.buf)-d.off)
	}
	return nil
}

// Enter notes that a container is being entered, failing beyond MaxDepth;
// Leave undoes it. Generated code brackets nested types with them so that
// recursive types cannot nest without limit. ReadAny, Skip and the typed
// paths do this themselves.
func (d *Decoder) Enter() error {
	d.depth++
	if d.depth > MaxDepth {
		return d.errorf(d.off, "nesting deeper than %d", MaxDepth)
	}
	return nil
}

// Leave undoes Enter.
func (d *Decoder) Leave() { d.depth-- }

func (d *Decoder) errorf(off int, format string, args ...any) *CBORError {
	return &CBORError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// substr returns the input bytes [i, j) as a string.
func (d *Decoder) substr(i, j int) string {
	if d.shared {
		return d.str[i:j]
	}
	return string(d.buf[i:j])
}

// Kind is the data-model kind of the next item, as PeekKind reports it.
type Kind uint8

// Kinds of items.
const (
	KindInvalid Kind = iota // end of input, or an item no reader accepts
	KindNull
	KindBool
	KindInt
	KindString
	KindBytes
	KindLink
	KindArray
	KindMap
)

// PeekKind returns the kind of the next item without reading it. A tag is
// reported as KindLink before its content is checked.
func (d *Decoder) PeekKind() Kind {
	if d.off >= len(d.buf) {
		return KindInvalid
	}
	c := d.buf[d.off]
	switch c >> 5 {
	case majorUint, majorNegInt:
		return KindInt
	case majorBytes:
		return KindBytes
	case majorText:
		return KindString
	case majorArray:
		return KindArray
	case majorMap:
		return KindMap
	case majorTag:
		return KindLink
	}
	switch c {
	case cborNull:
		return KindNull
	case cborFalse, cborTrue:
		return KindBool
	}
	return KindInvalid
}

// describe names the item starting at off, for errors.
func (d *Decoder) describe(off int) string {
	if off >= len(d.buf) {
		return "the end of input"
	}
	c := d.buf[off]
	switch c >> 5 {
	case majorUint, majorNegInt:
		return "an integer"
	case majorBytes:
		return "a byte string"
	case majorText:
		return "a string"
	case majorArray:
		return "an array"
	case majorMap:
		return "a map"
	case majorTag:
		return "a tag"
	}
	switch c {
	case cborNull:
		return "null"
	case cborFalse, cborTrue:
		return "a boolean"
	case 0xf9, 0xfa, 0xfb:
		return "a float"
	}
	return "a simple value"
}

var majorNames = [8]string{"integer", "negative integer", "byte string", "string", "array", "map", "tag", "simple value"}

// readHead reads the header of the item at d.off and returns its major
// type and argument, rejecting non-minimal and indefinite lengths. Items
// of major type 7 are returned with their additional information as the
// argument, and only false, true and null get through.
func (d *Decoder) readHead() (byte, uint64, error) {
	start := d.off
	if start >= len(d.buf) {
		return 0, 0, d.errorf(start, "unexpected end of input")
	}
	c := d.buf[start]
	major, info := c>>5, c&0x1f
	if info < 24 {
		if major == majorSimple && (info < 20 || info > 22) {
			if info == 23 {
				return 0, 0, d.errorf(start, "undefined is not allowed")
			}
			return 0, 0, d.errorf(start, "simple value %d is not allowed", info)
		}
		d.off++
		return major, uint64(info), nil
	}
	if major == majorSimple {
		switch info {
		case 24:
			return 0, 0, d.errorf(start, "simple values are not allowed")
		case 25, 26, 27:
			return 0, 0, d.errorf(start, "floats are not allowed (%d-bit float)", 8<<(info-24))
		case 31:
			return 0, 0, d.errorf(start, "unexpected break code")
		}
		return 0, 0, d.errorf(start, "reserved additional information %d", info)
	}
	if info == 31 {
		return 0, 0, d.errorf(start, "indefinite-length %s is not allowed", majorNames[major])
	}
	if info > 27 {
		return 0, 0, d.errorf(start, "reserved additional information %d", info)
	}
	size := 1 << (info - 24) // 1, 2, 4 or 8 bytes follow
	if len(d.buf)-start-1 < size {
		return 0, 0, d.errorf(start, "unexpected end of input in %s header", majorNames[major])
	}
	p := d.buf[start+1:]
	var v, min uint64
	switch size {
	case 1:
		v, min = uint64(p[0]), 24
	case 2:
		v, min = uint64(binary.BigEndian.Uint16(p)), 1<<8
	case 4:
		v, min = uint64(binary.BigEndian.Uint32(p)), 1<<16
	default:
		v, min = binary.BigEndian.Uint64(p), 1<<32
	}
	if v < min {
		return 0, 0, d.errorf(start, "non-minimal encoding of %s %d", majorNames[major], v)
	}
	d.off = start + 1 + size
	return major, v, nil
}

// expect reads a header that must be of the given major type.
func (d *Decoder) expect(major byte, what string) (uint64, error) {
	start := d.off
	if start < len(d.buf) && d.buf[start]>>5 != major {
		return 0, d.errorf(start, "expected %s, found %s", what, d.describe(start))
	}
	m, n, err := d.readHead()
	if err == nil && m != major {
		// Only reached for major 7, whose errors readHead already made.
		return 0, d.errorf(start, "expected %s, found %s", what, d.describe(start))
	}
	return n, err
}

// ReadMapHeader reads a map header and returns the number of entries.
func (d *Decoder) ReadMapHeader() (int, error) {
	start := d.off
	n, err := d.expect(majorMap, "a map")
	if err != nil {
		return 0, err
	}
	if n > MaxContainerLen {
		return 0, d.errorf(start, "map of %d entries exceeds the limit of %d", n, MaxContainerLen)
	}
	if n*2 > uint64(len(d.buf)-d.off) {
		return 0, d.errorf(start, "map of %d entries cannot fit in the %d bytes left", n, len(d.buf)-d.off)
	}
	return int(n), nil
}

// ReadArrayHeader reads an array header and returns the number of items.
func (d *Decoder) ReadArrayHeader() (int, error) {
	start := d.off
	n, err := d.expect(majorArray, "an array")
	if err != nil {
		return 0, err
	}
	if n > MaxContainerLen {
		return 0, d.errorf(start, "array of %d items exceeds the limit of %d", n, MaxContainerLen)
	}
	if n > uint64(len(d.buf)-d.off) {
		return 0, d.errorf(start, "array of %d items cannot fit in the %d bytes left", n, len(d.buf)-d.off)
	}
	return int(n), nil
}

// emptyKey is returned for the empty map key, so that it differs from the
// nil that ReadMapKey takes for "no previous key".
var emptyKey = []byte{}

// ReadMapKey reads a map key and checks that it sorts after prev, the
// previous key of the same map, or nil for the first. The result aliases
// the input and is only valid as long as it is; string(key) in a switch or
// comparison costs nothing.
func (d *Decoder) ReadMapKey(prev []byte) ([]byte, error) {
	start := d.off
	if start < len(d.buf) && d.buf[start]>>5 != majorText {
		return nil, d.errorf(start, "map key is %s, not a string", d.describe(start))
	}
	_, n, err := d.readHead()
	if err != nil {
		return nil, err
	}
	if n > MaxKeyLen {
		return nil, d.errorf(start, "map key of %d bytes exceeds the limit of %d", n, MaxKeyLen)
	}
	if n > uint64(len(d.buf)-d.off) {
		return nil, d.errorf(start, "map key of %d bytes runs past the end of input", n)
	}
	k := d.buf[d.off : d.off+int(n)]
	if !utf8.Valid(k) {
		return nil, d.errorf(start, "map key %q is not valid UTF-8", k)
	}
	if prev != nil {
		if len(k) < len(prev) || (len(k) == len(prev) && bytes.Compare(k, prev) <= 0) {
			if bytes.Equal(k, prev) {
				return nil, d.errorf(start, "duplicate map key %q", k)
			}
			return nil, d.errorf(start, "map keys out of order (%q after %q)", k, prev)
		}
	}
	d.off += int(n)
	if n == 0 {
		return emptyKey, nil
	}
	return k, nil
}

// readText reads a text string and returns its bounds in the input.
func (d *Decoder) readText(what string) (int, int, error) {
	start := d.off
	n, err := d.expect(majorText, what)
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(len(d.buf)-d.off) {
		return 0, 0, d.errorf(start, "string of %d bytes runs past the end of input", n)
	}
	i, j := d.off, d.off+int(n)
	if !utf8.Valid(d.buf[i:j]) {
		return 0, 0, d.errorf(start, "string is not valid UTF-8")
	}
	d.off = j
	return i, j, nil
}

// ReadString reads a text string.
func (d *Decoder) ReadString() (string, error) {
	i, j, err := d.readText("a string")
	if err != nil {
		return "", err
	}
	return d.substr(i, j), nil
}

// ReadInt reads an integer; the whole int64 range is accepted.
func (d *Decoder) ReadInt() (int64, error) {
	start := d.off
	if start < len(d.buf) {
		if m := d.buf[start] >> 5; m != majorUint && m != majorNegInt {
			return 0, d.errorf(start, "expected an integer, found %s", d.describe(start))
		}
	}
	major, n, err := d.readHead()
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64 {
		if major == majorUint {
			return 0, d.errorf(start, "integer %d is above the int64 range", n)
		}
		return 0, d.errorf(start, "integer -1-%d is below the int64 range", n)
	}
	if major == majorUint {
		return int64(n), nil
	}
	return -1 - int64(n), nil
}

// ReadBool reads true or false.
func (d *Decoder) ReadBool() (bool, error) {
	if d.off < len(d.buf) {
		switch d.buf[d.off] {
		case cborTrue:
			d.off++
			return true, nil
		case cborFalse:
			d.off++
			return false, nil
		}
	}
	return false, d.errorf(d.off, "expected a boolean, found %s", d.describe(d.off))
}

// PeekNull reports whether the next item is null, without reading it.
func (d *Decoder) PeekNull() bool { return d.off < len(d.buf) && d.buf[d.off] == cborNull }

// ReadNull reads null.
func (d *Decoder) ReadNull() error {
	if !d.PeekNull() {
		return d.errorf(d.off, "expected null, found %s", d.describe(d.off))
	}
	d.off++
	return nil
}

// ReadBytes reads a byte string into a new slice (never nil).
func (d *Decoder) ReadBytes() ([]byte, error) {
	v, err := d.ReadBytesView()
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out, nil
}

// ReadBytesView reads a byte string like ReadBytes, without copying it: the
// result aliases the input and is only valid as long as it is.
func (d *Decoder) ReadBytesView() ([]byte, error) {
	start := d.off
	n, err := d.expect(majorBytes, "a byte string")
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.buf)-d.off) {
		return nil, d.errorf(start, "byte string of %d bytes runs past the end of input", n)
	}
	out := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return out, nil
}

// ReadCID reads a link: tag 42 over a byte string holding 0x00 and a
// binary CID that fills the rest exactly.
func (d *Decoder) ReadCID() (CID, error) {
	i, j, err := d.readCID()
	if err != nil {
		return CID{}, err
	}
	return CID{b: d.substr(i, j)}, nil
}

// ReadCIDBytes reads a link like ReadCID and returns the binary CID
// without copying it: the result aliases the input and is only valid as
// long as it is (CIDFromKeyString turns a copy of it into a CID).
func (d *Decoder) ReadCIDBytes() ([]byte, error) {
	i, j, err := d.readCID()
	if err != nil {
		return nil, err
	}
	return d.buf[i:j:j], nil
}

// readCID reads a link and returns the bounds of its binary CID in the
// input.
func (d *Decoder) readCID() (int, int, error) {
	start := d.off
	tag, err := d.expect(majorTag, "a link")
	if err != nil {
		return 0, 0, err
	}
	if tag != tagCID {
		return 0, 0, d.errorf(start, "tag %d is not allowed (only 42, for links)", tag)
	}
	bstart := d.off
	if bstart < len(d.buf) && d.buf[bstart]>>5 != majorBytes {
		return 0, 0, d.errorf(bstart, "tag 42 must hold a byte string, not %s", d.describe(bstart))
	}
	_, n, err := d.readHead()
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(len(d.buf)-d.off) {
		return 0, 0, d.errorf(bstart, "link of %d bytes runs past the end of input", n)
	}
	body := d.buf[d.off : d.off+int(n)]
	if n == 0 || body[0] != 0 {
		return 0, 0, d.errorf(bstart, "link must start with the 0x00 multibase prefix")
	}
	l, err := cidLen(body[1:])
	if err != nil {
		return 0, 0, d.errorf(d.off+1, "invalid link: %v", err)
	}
	if l != len(body)-1 {
		return 0, 0, d.errorf(bstart, "invalid link: %d trailing bytes after the CID", len(body)-1-l)
	}
	i, j := d.off+1, d.off+int(n)
	d.off += int(n)
	return i, j, nil
}

// ReadBlob reads a blob map, in either the current or the legacy form.
func (d *Decoder) ReadBlob() (Blob, error) {
	start := d.off
	if start < len(d.buf) && d.buf[start]>>5 != majorMap {
		return Blob{}, d.errorf(start, "expected a blob, found %s", d.describe(start))
	}
	_, b, ok, err := d.readMap()
	if err != nil {
		return Blob{}, err
	}
	if !ok {
		return Blob{}, d.errorf(start, "map is not a blob")
	}
	return b, nil
}

// Skip reads and discards one item. It accepts and rejects exactly what
// ReadAny does, with the same errors, but builds nothing: it walks the
// item in place and allocates only when it fails. (Where a "$type": "blob"
// map has several unexpected fields, Skip names the first and ReadAny any
// one of them.)
func (d *Decoder) Skip() error {
	if d.off >= len(d.buf) {
		return d.errorf(d.off, "unexpected end of input")
	}
	c := d.buf[d.off]
	switch c >> 5 {
	case majorUint, majorNegInt:
		if c&0x1f < 24 {
			d.off++
			return nil
		}
		_, err := d.ReadInt()
		return err
	case majorText:
		_, _, err := d.readText("a string")
		return err
	case majorMap:
		return d.skipMap()
	case majorArray:
		return d.skipArray()
	case majorBytes:
		_, err := d.ReadBytesView()
		return err
	case majorTag:
		_, _, err := d.readCID()
		return err
	}
	switch c {
	case cborNull, cborTrue, cborFalse:
		d.off++
		return nil
	}
	_, _, err := d.readHead() // makes the error for other major-7 items
	return err
}

// skipArray is readArray without the slice.
func (d *Decoder) skipArray() error {
	start := d.off
	n, err := d.ReadArrayHeader()
	if err != nil {
		return err
	}
	d.depth++
	if d.depth > MaxDepth {
		return d.errorf(start, "nesting deeper than %d", MaxDepth)
	}
	for i := 0; i < n; i++ {
		if err := d.Skip(); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}

// skipMap is readMap without the map. It notes where the values of the
// keys that checkType and blobFromMap look at begin, and once the whole
// map has been read, as readMap does, makes the same checks on them.
func (d *Decoder) skipMap() error {
	start := d.off
	n, err := d.ReadMapHeader()
	if err != nil {
		return err
	}
	d.depth++
	if d.depth > MaxDepth {
		return d.errorf(start, "nesting deeper than %d", MaxDepth)
	}
	// Offsets of the values of "$type", "ref", "mimeType" and "size", and
	// of the first other key; -1 while absent.
	typeOff, refOff, mimeOff, sizeOff, otherOff := -1, -1, -1, -1, -1
	var prev []byte
	for i := 0; i < n; i++ {
		keyOff := d.off
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return err
		}
		switch string(k) {
		case typeKey:
			typeOff = d.off
		case blobRef:
			refOff = d.off
		case blobMime:
			mimeOff = d.off
		case blobSize:
			sizeOff = d.off
		default:
			if otherOff < 0 {
				otherOff = keyOff
			}
		}
		if err := d.Skip(); err != nil {
			return err
		}
		prev = k
	}
	d.depth--
	if typeOff < 0 {
		// Without "$type" readMap only looks for the legacy blob form,
		// which cannot fail: a map without its exact shape stays a map.
		return nil
	}
	// checkType.
	if d.buf[typeOff]>>5 != majorText {
		return d.errorf(start, "$type must be a string, not %s", d.kindAt(typeOff))
	}
	if d.buf[typeOff] == 0x60 {
		return d.errorf(start, "$type must not be empty")
	}
	// blobFromMap, for "$type": "blob". The string was read above, so its
	// header is minimal: "blob" can only be 0x64 and four bytes.
	if d.buf[typeOff] != 0x60+byte(len(blobType)) || string(d.buf[typeOff+1:typeOff+1+len(blobType)]) != blobType {
		return nil
	}
	if refOff < 0 || d.buf[refOff]>>5 != majorTag { // every tag read is a link
		return d.errorf(start, "blob: ref must be a link, not %s", d.kindAt(refOff))
	}
	if mimeOff < 0 || d.buf[mimeOff]>>5 != majorText {
		return d.errorf(start, "blob: mimeType must be a string, not %s", d.kindAt(mimeOff))
	}
	if sizeOff < 0 || (d.buf[sizeOff]>>5 != majorUint && d.buf[sizeOff]>>5 != majorNegInt) {
		return d.errorf(start, "blob: size must be an integer, not %s", d.kindAt(sizeOff))
	}
	if d.buf[sizeOff]>>5 == majorNegInt {
		size, _ := (&Decoder{buf: d.buf, off: sizeOff}).ReadInt()
		return d.errorf(start, "blob: size %d is negative", size)
	}
	if otherOff >= 0 {
		k, _ := (&Decoder{buf: d.buf, off: otherOff}).ReadMapKey(nil)
		return d.errorf(start, "blob: unexpected field %q", k)
	}
	return nil
}

// kindAt names, as kindName does for the value ReadAny makes of it, the
// item at off, which has been read without error; off -1 stands for an
// absent value, which kindName sees as nil. It is for errors only: it
// decodes the item again.
func (d *Decoder) kindAt(off int) string {
	if off < 0 {
		return kindName(nil)
	}
	v, err := (&Decoder{buf: d.buf, off: off}).ReadAny()
	if err != nil {
		return d.describe(off)
	}
	return kindName(v)
}

// ReadAny reads one item of any kind into the generic data model:
// map[string]any, []any, string, int64, bool, nil, Bytes, CID, or Blob for
// a map with a blob's shape.
func (d *Decoder) ReadAny() (any, error) {
	if d.off >= len(d.buf) {
		return nil, d.errorf(d.off, "unexpected end of input")
	}
	switch d.buf[d.off] >> 5 {
	case majorUint, majorNegInt:
		return d.ReadInt()
	case majorText:
		i, j, err := d.readText("a string")
		if err != nil {
			return nil, err
		}
		return d.substr(i, j), nil
	case majorMap:
		m, b, isBlob, err := d.readMap()
		if err != nil {
			return nil, err
		}
		if isBlob {
			return b, nil
		}
		return m, nil
	case majorArray:
		return d.readArray()
	case majorBytes:
		b, err := d.ReadBytes()
		if err != nil {
			return nil, err
		}
		return Bytes(b), nil
	case majorTag:
		return d.ReadCID()
	}
	switch d.buf[d.off] {
	case cborNull:
		d.off++
		return nil, nil
	case cborTrue:
		d.off++
		return true, nil
	case cborFalse:
		d.off++
		return false, nil
	}
	_, _, err := d.readHead() // makes the error for other major-7 items
	return nil, err
}

func (d *Decoder) readArray() ([]any, error) {
	start := d.off
	n, err := d.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	d.depth++
	if d.depth > MaxDepth {
		return nil, d.errorf(start, "nesting deeper than %d", MaxDepth)
	}
	a := make([]any, n)
	for i := range a {
		if a[i], err = d.ReadAny(); err != nil {
			return nil, err
		}
	}
	d.depth--
	return a, nil
}

// readMap reads a map into the generic form and checks its "$type". When
// the map has a blob's shape it also returns the Blob and true.
func (d *Decoder) readMap() (map[string]any, Blob, bool, error) {
	start := d.off
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, Blob{}, false, err
	}
	d.depth++
	if d.depth > MaxDepth {
		return nil, Blob{}, false, d.errorf(start, "nesting deeper than %d", MaxDepth)
	}
	m := make(map[string]any, n)
	var prev []byte
	hasType, hasCID := false, false
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, Blob{}, false, err
		}
		ks := d.substr(d.off-len(k), d.off)
		switch ks {
		case typeKey:
			hasType = true
		case legacyCID:
			hasCID = true
		}
		v, err := d.ReadAny()
		if err != nil {
			return nil, Blob{}, false, err
		}
		m[ks] = v
		prev = k
	}
	d.depth--
	if hasType {
		if err := checkType(m); err != nil {
			return nil, Blob{}, false, d.errorf(start, "%v", err)
		}
	}
	if hasType || (hasCID && n == 2) {
		b, ok, err := blobFromMap(m)
		if err != nil {
			return nil, Blob{}, false, d.errorf(start, "%v", err)
		}
		return m, b, ok, nil
	}
	return m, Blob{}, false, nil
}
