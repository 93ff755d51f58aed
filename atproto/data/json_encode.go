package data

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// MarshalJSON writes a value of the generic data model as atproto JSON: a
// CID as {"$link": "..."}, Bytes as {"$bytes": "..."} (base64 without
// padding), a Blob as {"$type": "blob", "mimeType": ..., "ref": {"$link":
// ...}, "size": ...} or, for a legacy blob, {"cid": "...", "mimeType": ...}.
//
// Map keys are written in sorted (byte-wise) order, so the output is
// deterministic, with no insignificant whitespace. Strings are escaped as
// encoding/json does, except that <, > and & are left as they are.
//
// Besides the generic model's types it accepts Go conveniences: every
// integer type (within the int64 range), []byte, slices and arrays of any
// supported type, maps with string keys, pointers (nil is null), and named
// types of these kinds. Floats are refused (the data model has none), as
// are invalid UTF-8, undefined CIDs, maps that would not read back as
// themselves (a $link or $bytes key, a bad $type, a "$type": "blob" map
// that is not a blob) and nesting deeper than MaxDepth. Errors are
// *JSONError.
func MarshalJSON(v any) ([]byte, error) {
	e := jsonEncPool.Get().(*jsonEncoder)
	e.buf = e.buf[:0]
	e.derefs = 0
	err := e.encode(v, 0)
	var out []byte
	if err == nil {
		out = slices.Clone(e.buf)
	}
	if cap(e.buf) <= 64<<10 && cap(e.keys) <= jsonMaxPooled {
		clear(e.keys[:cap(e.keys)])
		e.keys = e.keys[:0]
		jsonEncPool.Put(e)
	}
	if err != nil {
		if je, ok := err.(*JSONError); ok {
			je.finish()
		}
		return nil, err
	}
	return out, nil
}

var jsonEncPool = sync.Pool{New: func() any { return &jsonEncoder{buf: make([]byte, 0, 1024)} }}

// jsonEncoder appends to buf; keys is a stack of map keys being sorted.
type jsonEncoder struct {
	buf    []byte
	keys   []string
	derefs int // pointers being followed
}

const jsonMaxDerefs = 64

func jsonEncErr(format string, args ...any) error {
	return &JSONError{Offset: -1, Msg: fmt.Sprintf(format, args...), encode: true}
}

// encode writes v; depth counts the containers around it.
func (e *jsonEncoder) encode(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		return e.str(x)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case map[string]any:
		return e.mapAny(x, depth+1)
	case []any:
		if depth+1 > MaxDepth {
			return jsonEncDepthErr()
		}
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(el, depth+1); err != nil {
				return jsonWithIndex(err, i)
			}
		}
		e.buf = append(e.buf, ']')
	case CID:
		return e.link(x)
	case Bytes:
		e.bytes(x)
	case []byte:
		e.bytes(x)
	case Blob:
		return e.blob(x, depth+1)
	case []string:
		if depth+1 > MaxDepth {
			return jsonEncDepthErr()
		}
		e.buf = append(e.buf, '[')
		for i, s := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.str(s); err != nil {
				return jsonWithIndex(err, i)
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]string:
		if depth+1 > MaxDepth {
			return jsonEncDepthErr()
		}
		base := len(e.keys)
		for k := range x {
			e.keys = append(e.keys, k)
		}
		defer e.dropKeys(base)
		keys := e.keys[base:]
		slices.Sort(keys)
		if err := jsonCheckReservedKeys(keys, func(k string) any { return x[k] }); err != nil {
			return err
		}
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.str(k); err != nil {
				return err
			}
			e.buf = append(e.buf, ':')
			if err := e.str(x[k]); err != nil {
				return jsonWithKey(err, k)
			}
		}
		e.buf = append(e.buf, '}')
	case float64, float32:
		return jsonEncErr("%v: floats are not allowed in the data model", x)
	default:
		return e.reflectValue(reflect.ValueOf(v), depth)
	}
	return nil
}

func jsonEncDepthErr() error {
	return jsonEncErr("nesting deeper than %d levels", MaxDepth)
}

func (e *jsonEncoder) dropKeys(base int) {
	clear(e.keys[base:])
	e.keys = e.keys[:base]
}

// jsonCheckReservedKeys refuses maps that would read back as something else:
// the keys are sorted, so those starting with '$' come early.
func jsonCheckReservedKeys(keys []string, get func(string) any) error {
	for _, k := range keys {
		if k == "" || k[0] < '$' {
			continue
		}
		if k[0] > '$' {
			break
		}
		switch k {
		case "$link", "$bytes":
			return jsonEncErr("map key %s is reserved for a link or bytes and cannot be written in a map", k)
		case typeKey:
			s, ok := get(k).(string)
			if !ok {
				return jsonEncErr("$type must be a string, not %s", kindName(get(k)))
			}
			if s == "" {
				return jsonEncErr("$type must not be empty")
			}
		}
	}
	return nil
}

func (e *jsonEncoder) mapAny(m map[string]any, depth int) error {
	if depth > MaxDepth {
		return jsonEncDepthErr()
	}
	base := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	defer e.dropKeys(base)
	keys := e.keys[base:]
	slices.Sort(keys)
	if err := jsonCheckReservedKeys(keys, func(k string) any { return m[k] }); err != nil {
		return err
	}
	if t, ok := m[typeKey].(string); ok && t == blobType {
		// Such a map reads back as a Blob; make sure it will.
		if _, _, err := blobFromMap(m); err != nil {
			return jsonEncErr("%s", err.Error())
		}
	}
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.str(k); err != nil {
			return err
		}
		e.buf = append(e.buf, ':')
		if err := e.encode(m[k], depth); err != nil {
			return jsonWithKey(err, k)
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *jsonEncoder) link(c CID) error {
	if !c.Defined() {
		return jsonEncErr("cannot write an undefined CID")
	}
	e.buf = append(e.buf, `{"$link":"`...)
	e.buf = append(e.buf, c.String()...)
	e.buf = append(e.buf, `"}`...)
	return nil
}

func (e *jsonEncoder) bytes(b []byte) {
	e.buf = append(e.buf, `{"$bytes":"`...)
	e.buf = base64.RawStdEncoding.AppendEncode(e.buf, b)
	e.buf = append(e.buf, `"}`...)
}

func (e *jsonEncoder) blob(b Blob, depth int) error {
	if depth > MaxDepth {
		return jsonEncDepthErr()
	}
	if !b.Ref.Defined() {
		return jsonEncErr("blob has an undefined ref")
	}
	if b.Legacy {
		e.buf = append(e.buf, `{"cid":"`...)
		e.buf = append(e.buf, b.Ref.String()...)
		e.buf = append(e.buf, `","mimeType":`...)
		if err := e.str(b.MimeType); err != nil {
			return jsonWithKey(err, blobMime)
		}
		e.buf = append(e.buf, '}')
		return nil
	}
	if b.Size < 0 {
		return jsonEncErr("blob size %d is negative", b.Size)
	}
	e.buf = append(e.buf, `{"$type":"blob","mimeType":`...)
	if err := e.str(b.MimeType); err != nil {
		return jsonWithKey(err, blobMime)
	}
	e.buf = append(e.buf, `,"ref":{"$link":"`...)
	e.buf = append(e.buf, b.Ref.String()...)
	e.buf = append(e.buf, `"},"size":`...)
	e.buf = strconv.AppendInt(e.buf, b.Size, 10)
	e.buf = append(e.buf, '}')
	return nil
}

// reflectValue handles the Go conveniences that the type switch does not.
func (e *jsonEncoder) reflectValue(rv reflect.Value, depth int) error {
	switch rv.Kind() {
	case reflect.Invalid:
		e.buf = append(e.buf, "null"...)
		return nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		// A chain of pointers does not nest in the output, but a cycle of
		// them must still end.
		if e.derefs >= jsonMaxDerefs {
			return jsonEncErr("more than %d pointers followed in a row", jsonMaxDerefs)
		}
		e.derefs++
		err := e.encode(rv.Elem().Interface(), depth)
		e.derefs--
		return err
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, rv.Bool())
	case reflect.String:
		return e.str(rv.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return jsonEncErr("integer %d is outside the int64 range", u)
		}
		e.buf = strconv.AppendUint(e.buf, u, 10)
	case reflect.Float32, reflect.Float64:
		return jsonEncErr("%v: floats are not allowed in the data model", rv.Float())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			e.bytes(rv.Bytes())
			return nil
		}
		if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			e.bytes(b)
			return nil
		}
		if depth+1 > MaxDepth {
			return jsonEncDepthErr()
		}
		e.buf = append(e.buf, '[')
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(rv.Index(i).Interface(), depth+1); err != nil {
				return jsonWithIndex(err, i)
			}
		}
		e.buf = append(e.buf, ']')
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return jsonEncErr("map keys must be strings, not %s", rv.Type().Key())
		}
		if depth+1 > MaxDepth {
			return jsonEncDepthErr()
		}
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		// Convert to the generic form, which does the checks once.
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		return e.mapAny(m, depth+1)
	default:
		return jsonEncErr("unsupported Go type %s", rv.Type())
	}
	return nil
}

// jsonStrEscape marks the ASCII bytes written with an escape.
var jsonStrEscape = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

const jsonHexDigits = "0123456789abcdef"

// str writes a quoted string as encoding/json would, minus HTML escaping:
// control characters, quote and backslash are escaped, as are U+2028 and
// U+2029 (which some JavaScript parsers take for line ends).
func (e *jsonEncoder) str(s string) error {
	buf := append(e.buf, '"')
	run := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonStrEscape[c] {
				i++
				continue
			}
			buf = append(buf, s[run:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', jsonHexDigits[c>>4], jsonHexDigits[c&0xf])
			}
			i++
			run = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			e.buf = buf
			return jsonEncErr("string is not valid UTF-8 (bad byte at %d)", i)
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[run:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', jsonHexDigits[r&0xf])
			i += n
			run = i
			continue
		}
		i += n
	}
	buf = append(buf, s[run:]...)
	e.buf = append(buf, '"')
	return nil
}
