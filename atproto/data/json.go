package data

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// This file holds the atproto JSON reader: a hand-written scanner that goes
// straight from bytes to the generic data model, checking the data model's
// rules on the way, so that a request body is read in one pass.
//
// Numbers. The data model has integers only. A JSON number is accepted when
// its exact decimal value is an integer that fits in an int64, whatever its
// spelling: 123, 123.0, 1.23e2 and 1e2 all read as int64(123) or 100. This
// matches the TypeScript reference, which runs JSON.parse and then accepts
// any number that Number.isSafeInteger approves (123.0 and 1e2 included);
// unlike it, the check here is done exactly on the decimal digits rather
// than on a float64, so no two distinct JSON numbers collapse into one and
// integers up to the full int64 range are kept exactly. A number with a
// non-zero fractional value (123.5, 1e-2) is rejected, as is one outside the
// int64 range. Writers should still keep to ±(2^53-1) (MaxSafeInt).
//
// Strings. Every string read shares one copy of the input: a string without
// escapes is a slice of it and costs no allocation of its own. A small
// string kept from a large document therefore keeps the whole document
// alive; copy it (strings.Clone) to keep it long-term on its own.

// JSONError reports JSON that is malformed or breaks a rule of the data
// model, with the place it was found.
type JSONError struct {
	// Path locates the offending value from the top-level one ("$"), as in
	// $.embed.images[0].image.ref. For a rule about a map as a whole (a
	// duplicate key, a malformed $link object) it is the path of the map.
	Path string
	// Offset is the byte offset in the input at which the problem was
	// found; for errors from MarshalJSON it is -1.
	Offset int
	// Msg says what is wrong.
	Msg string

	encode bool
	segs   []jsonPathSeg // innermost first, while the error travels outwards
}

func (e *JSONError) Error() string {
	op := "json"
	if e.encode {
		op = "json encode"
	}
	return "data: " + op + " at " + e.Path + ": " + e.Msg
}

// jsonPathSeg is one step of an error's path: a map key or an array index.
type jsonPathSeg struct {
	key   string
	index int
	isKey bool
}

// jsonWithKey and jsonWithIndex add one step to the path of an error on its way
// out of a map entry or an array element. The happy path pays nothing for
// path tracking.
func jsonWithKey(err error, key string) error {
	if je, ok := err.(*JSONError); ok {
		je.segs = append(je.segs, jsonPathSeg{key: key, isKey: true})
	}
	return err
}

func jsonWithIndex(err error, i int) error {
	if je, ok := err.(*JSONError); ok {
		je.segs = append(je.segs, jsonPathSeg{index: i})
	}
	return err
}

// finish turns the collected steps into Path.
func (e *JSONError) finish() *JSONError {
	var sb strings.Builder
	sb.WriteByte('$')
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if !s.isKey {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
			continue
		}
		if jsonPlainKey(s.key) {
			sb.WriteByte('.')
			sb.WriteString(s.key)
		} else {
			sb.WriteByte('[')
			k := s.key
			if len(k) > 64 {
				k = k[:64] + "..."
			}
			sb.WriteString(strconv.Quote(k))
			sb.WriteByte(']')
		}
	}
	e.Path = sb.String()
	e.segs = nil
	return e
}

// jsonPlainKey reports whether a key can be written after a dot in a path.
func jsonPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c == '$' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// ParseJSON reads an atproto JSON document whose top-level value is an
// object, such as a record or an XRPC request body, into the generic data
// model: map[string]any, []any, string, int64, bool, nil, Bytes, CID and
// Blob.
//
// Besides well-formed JSON (RFC 8259, UTF-8, no duplicate keys, no lone
// surrogate escapes, nothing after the value) it requires what the data
// model requires: integers only (see the package notes on numbers),
// well-formed {"$link": ...} and {"$bytes": ...} objects, a non-empty string
// $type where there is one, well-formed blobs, and the limits MaxDepth,
// MaxContainerLen and MaxKeyLen. Errors are *JSONError.
//
// A top-level object that reads as a link, bytes or a blob is rejected: it
// is not a map.
func ParseJSON(b []byte) (map[string]any, error) {
	v, off, err := decodeJSONValue(b, true)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, (&JSONError{Offset: off, Msg: "top-level value must be a map, not " + kindName(v)}).finish()
	}
	return m, nil
}

// DecodeJSON is ParseJSON for any top-level value, including scalars, links
// and blobs.
func DecodeJSON(b []byte) (any, error) {
	v, _, err := decodeJSONValue(b, false)
	return v, err
}

var jsonDecPool = sync.Pool{New: func() any { return new(jsonDecoder) }}

// Scratch stacks bigger than this are not kept in the pool.
const jsonMaxPooled = 4096

func decodeJSONValue(b []byte, wantObject bool) (any, int, error) {
	d := jsonDecPool.Get().(*jsonDecoder)
	d.src = string(b)
	d.pos = 0
	d.skipWS()
	var v any
	var err error
	start := d.pos
	if wantObject && (d.pos >= len(d.src) || d.src[d.pos] != '{') {
		if d.pos >= len(d.src) {
			err = d.syntaxErr("unexpected end of input, expecting an object")
		} else {
			err = d.syntaxErr("top-level value must be an object, not " + jsonStartKind(d.src[d.pos]))
		}
	} else {
		v, err = d.value(0)
		if err == nil {
			d.skipWS()
			if d.pos < len(d.src) {
				v = nil
				err = d.syntaxErr(fmt.Sprintf("%s after the top-level value", jsonDescribeByte(d.src[d.pos])))
			}
		}
	}
	d.src = ""
	if cap(d.kvs) <= jsonMaxPooled && cap(d.vals) <= jsonMaxPooled && cap(d.scratch) <= 16*jsonMaxPooled {
		d.kvs, d.vals, d.scratch = d.kvs[:0], d.vals[:0], d.scratch[:0]
		jsonDecPool.Put(d)
	}
	if err != nil {
		if je, ok := err.(*JSONError); ok {
			je.finish()
		}
		return nil, start, err
	}
	return v, start, nil
}

// jsonDecoder holds the state of one parse. kvs and vals are stacks shared
// by all the maps and arrays being read: entries collect there until the
// container closes, so that it can be allocated at its exact size once.
type jsonDecoder struct {
	src     string
	pos     int
	kvs     []jsonKV
	vals    []any
	scratch []byte
}

type jsonKV struct {
	key string
	val any
}

func (d *jsonDecoder) errAt(off int, msg string) error {
	return &JSONError{Offset: off, Msg: msg}
}

func (d *jsonDecoder) syntaxErr(msg string) error {
	return &JSONError{Offset: d.pos, Msg: fmt.Sprintf("%s (at byte %d)", msg, d.pos)}
}

// jsonStartKind names the kind of value that starts with c.
func jsonStartKind(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	}
	return jsonDescribeByte(c)
}

func jsonDescribeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("unexpected character %q", c)
	}
	return fmt.Sprintf("unexpected byte 0x%02x", c)
}

func (d *jsonDecoder) skipWS() {
	for d.pos < len(d.src) {
		switch d.src[d.pos] {
		case ' ', '\n', '\r', '\t':
			d.pos++
		default:
			return
		}
	}
}

// value reads one value; depth is the number of containers around it.
func (d *jsonDecoder) value(depth int) (any, error) {
	d.skipWS()
	if d.pos >= len(d.src) {
		return nil, d.syntaxErr("unexpected end of input, expecting a value")
	}
	switch c := d.src[d.pos]; c {
	case '{':
		return d.object(depth + 1)
	case '[':
		return d.array(depth + 1)
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.number()
		}
		return nil, d.syntaxErr(jsonDescribeByte(c) + ", expecting a value")
	}
}

func (d *jsonDecoder) literal(word string) error {
	if strings.HasPrefix(d.src[d.pos:], word) {
		d.pos += len(word)
		return nil
	}
	return d.syntaxErr("invalid literal, expecting " + word)
}

func jsonDepthErr(off int) error {
	return &JSONError{Offset: off, Msg: fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
}

func (d *jsonDecoder) array(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, jsonDepthErr(d.pos)
	}
	d.pos++ // '['
	d.skipWS()
	if d.pos < len(d.src) && d.src[d.pos] == ']' {
		d.pos++
		return []any{}, nil
	}
	base := len(d.vals)
	n := 0
	for {
		if n == MaxContainerLen {
			d.dropVals(base)
			return nil, d.errAt(d.pos, fmt.Sprintf("array has more than %d elements", MaxContainerLen))
		}
		v, err := d.value(depth)
		if err != nil {
			d.dropVals(base)
			return nil, jsonWithIndex(err, n)
		}
		d.vals = append(d.vals, v)
		n++
		d.skipWS()
		if d.pos >= len(d.src) {
			d.dropVals(base)
			return nil, d.syntaxErr("unexpected end of input in array")
		}
		c := d.src[d.pos]
		d.pos++
		if c == ',' {
			continue
		}
		if c == ']' {
			break
		}
		d.pos--
		d.dropVals(base)
		return nil, d.syntaxErr(jsonDescribeByte(c) + " in array, expecting ',' or ']'")
	}
	out := make([]any, n)
	copy(out, d.vals[base:])
	d.dropVals(base)
	return out, nil
}

func (d *jsonDecoder) dropVals(base int) {
	clear(d.vals[base:])
	d.vals = d.vals[:base]
}

func (d *jsonDecoder) dropKVs(base int) {
	clear(d.kvs[base:])
	d.kvs = d.kvs[:base]
}

// object reads a map, or a link, bytes or a blob written as an object.
//
// An object one level deeper than MaxDepth is read only if it turns out to
// be a link or bytes: those are not containers in the data model (nor in
// DAG-CBOR), so a blob at the deepest level, whose ref is such an object,
// is still accepted. Anything nested inside that object is too deep.
func (d *jsonDecoder) object(depth int) (any, error) {
	start := d.pos
	if depth > MaxDepth+1 {
		return nil, jsonDepthErr(d.pos)
	}
	d.pos++ // '{'
	d.skipWS()
	if d.pos < len(d.src) && d.src[d.pos] == '}' {
		d.pos++
		if depth > MaxDepth {
			return nil, jsonDepthErr(start)
		}
		return map[string]any{}, nil
	}
	base := len(d.kvs)
	n := 0
	dollar := false // some key starts with '$'
	for {
		if n == MaxContainerLen {
			d.dropKVs(base)
			return nil, d.errAt(d.pos, fmt.Sprintf("map has more than %d entries", MaxContainerLen))
		}
		d.skipWS()
		if d.pos >= len(d.src) {
			d.dropKVs(base)
			return nil, d.syntaxErr("unexpected end of input in object, expecting a key")
		}
		if d.src[d.pos] != '"' {
			d.dropKVs(base)
			return nil, d.syntaxErr(jsonDescribeByte(d.src[d.pos]) + " in object, expecting a string key")
		}
		keyOff := d.pos
		key, err := d.str()
		if err != nil {
			d.dropKVs(base)
			return nil, err
		}
		if len(key) > MaxKeyLen {
			d.dropKVs(base)
			return nil, d.errAt(keyOff, fmt.Sprintf("key of %d bytes is longer than the %d allowed", len(key), MaxKeyLen))
		}
		if len(key) > 0 && key[0] == '$' {
			dollar = true
		}
		d.skipWS()
		if d.pos >= len(d.src) || d.src[d.pos] != ':' {
			d.dropKVs(base)
			if d.pos >= len(d.src) {
				return nil, d.syntaxErr("unexpected end of input in object, expecting ':'")
			}
			return nil, d.syntaxErr(jsonDescribeByte(d.src[d.pos]) + " after object key, expecting ':'")
		}
		d.pos++
		v, err := d.value(depth)
		if err != nil {
			d.dropKVs(base)
			return nil, jsonWithKey(err, key)
		}
		d.kvs = append(d.kvs, jsonKV{key, v})
		n++
		d.skipWS()
		if d.pos >= len(d.src) {
			d.dropKVs(base)
			return nil, d.syntaxErr("unexpected end of input in object")
		}
		c := d.src[d.pos]
		d.pos++
		if c == ',' {
			continue
		}
		if c == '}' {
			break
		}
		d.pos--
		d.dropKVs(base)
		return nil, d.syntaxErr(jsonDescribeByte(c) + " in object, expecting ',' or '}'")
	}
	kvs := d.kvs[base:]

	// The common special objects, {"$link": ...} and {"$bytes": ...}, are
	// recognised without building a map.
	if n == 1 && dollar {
		kv := kvs[0]
		switch kv.key {
		case "$link":
			d.dropKVs(base)
			return jsonLinkValue(kv.val, start)
		case "$bytes":
			d.dropKVs(base)
			return jsonBytesValue(kv.val, start)
		}
	}
	if depth > MaxDepth {
		d.dropKVs(base)
		return nil, jsonDepthErr(start)
	}
	m := make(map[string]any, n)
	for _, kv := range kvs {
		m[kv.key] = kv.val
	}
	if len(m) != n {
		// Some key came twice; name the first one repeated.
		seen := make(map[string]struct{}, n)
		var dup string
		for _, kv := range kvs {
			if _, ok := seen[kv.key]; ok {
				dup = kv.key
				break
			}
			seen[kv.key] = struct{}{}
		}
		d.dropKVs(base)
		return nil, d.errAt(start, "duplicate key "+strconv.Quote(dup))
	}
	legacy := n == 2 && jsonLegacyBlobKeys(kvs)
	d.dropKVs(base)
	if dollar {
		if _, ok := m["$link"]; ok {
			return nil, d.errAt(start, "a $link object must have no other keys")
		}
		if _, ok := m["$bytes"]; ok {
			return nil, d.errAt(start, "a $bytes object must have no other keys")
		}
		if err := checkType(m); err != nil {
			return nil, d.errAt(start, err.Error())
		}
	}
	if dollar || legacy {
		blob, ok, err := blobFromMap(m)
		if err != nil {
			return nil, d.errAt(start, err.Error())
		}
		if ok {
			return blob, nil
		}
	}
	return m, nil
}

// jsonLegacyBlobKeys reports whether two entries have the keys of a legacy
// blob, cid and mimeType.
func jsonLegacyBlobKeys(kvs []jsonKV) bool {
	a, b := kvs[0].key, kvs[1].key
	return a == legacyCID && b == blobMime || a == blobMime && b == legacyCID
}

// jsonLinkValue turns the value of a lone "$link" key into a CID.
func jsonLinkValue(v any, off int) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, &JSONError{Offset: off, Msg: "$link must be a string, not " + kindName(v)}
	}
	c, err := ParseCID(s)
	if err != nil {
		return nil, &JSONError{Offset: off, Msg: "$link: " + err.Error()}
	}
	return c, nil
}

// jsonBytesValue turns the value of a lone "$bytes" key into Bytes. Base64 is
// the standard alphabet; atproto writes it without padding, and padded
// input is accepted too. Line breaks, which Go's decoder would skip, are
// refused.
func jsonBytesValue(v any, off int) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, &JSONError{Offset: off, Msg: "$bytes must be a string, not " + kindName(v)}
	}
	b, err := jsonDecodeBase64(s)
	if err != nil {
		return nil, &JSONError{Offset: off, Msg: "$bytes: " + err.Error()}
	}
	return Bytes(b), nil
}

func jsonDecodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("invalid base64: line break")
	}
	enc := base64.RawStdEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.StdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %v", err)
	}
	return b, nil
}
