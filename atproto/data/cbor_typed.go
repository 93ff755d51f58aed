package data

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// The typed path encodes and decodes Go values through a codec built once
// per type with reflection and cached. Codecs work on raw pointers to the
// value, so that no reflection happens per field at run time: struct
// fields are reached by offset, and their keys, already in DAG-CBOR order,
// are kept encoded.

// codec encodes and decodes the value of one Go type that p points to.
type codec struct {
	enc   func(e *Encoder, p unsafe.Pointer) error
	dec   func(d *Decoder, p unsafe.Pointer) error
	empty func(p unsafe.Pointer) bool // the zero value, for omitempty
}

type fieldCodec struct {
	name      string
	key       []byte // the encoded key: header and bytes
	offset    uintptr
	omitEmpty bool
	isType    bool // the "$type" field
	c         *codec
}

// sliceHeader is the layout of a Go slice.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

var (
	codecs  sync.Map // reflect.Type -> *codec
	buildMu sync.Mutex

	typeCID         = reflect.TypeFor[CID]()
	typeBlob        = reflect.TypeFor[Blob]()
	typeAny         = reflect.TypeFor[any]()
	typeGenericMap  = reflect.TypeFor[map[string]any]()
	typeGenericList = reflect.TypeFor[[]any]()
	typeMarshaler   = reflect.TypeFor[CBORMarshaler]()
	typeUnmarshaler = reflect.TypeFor[CBORUnmarshaler]()
)

// codecFor returns the cached codec of t, building it on first use.
func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	// Codecs under construction are shared through this map so that
	// recursive types refer to themselves; they are published only once
	// all of them are complete.
	building := map[reflect.Type]*codec{}
	c, err := buildCodec(t, building)
	if err != nil {
		return nil, err
	}
	for bt, bc := range building {
		codecs.Store(bt, bc)
	}
	return c, nil
}

func buildCodec(t reflect.Type, building map[reflect.Type]*codec) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	if c, ok := building[t]; ok {
		return c, nil
	}
	c := &codec{}
	building[t] = c
	if err := fillCodec(c, t, building); err != nil {
		return nil, err
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		pt := reflect.PointerTo(t)
		if pt.Implements(typeMarshaler) {
			c.enc = func(e *Encoder, p unsafe.Pointer) error {
				return reflect.NewAt(t, p).Interface().(CBORMarshaler).MarshalDAGCBOR(e)
			}
		}
		if pt.Implements(typeUnmarshaler) {
			c.dec = func(d *Decoder, p unsafe.Pointer) error {
				return reflect.NewAt(t, p).Interface().(CBORUnmarshaler).UnmarshalDAGCBOR(d)
			}
		}
	}
	return c, nil
}

// fillCodec sets up c for t from its kind.
func fillCodec(c *codec, t reflect.Type, building map[reflect.Type]*codec) error {
	pt := reflect.PointerTo(t)
	selfCoded := t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		pt.Implements(typeMarshaler) && pt.Implements(typeUnmarshaler)
	if selfCoded {
		c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsZero() }
		return nil
	}
	switch t {
	case typeCID:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.WriteCID(*(*CID)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) (err error) {
			*(*CID)(p), err = d.ReadCID()
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return (*CID)(p).b == "" }
		return nil
	case typeBlob:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.WriteBlob(*(*Blob)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) (err error) {
			*(*Blob)(p), err = d.ReadBlob()
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return (*Blob)(p).Ref.b == "" }
		return nil
	case typeAny:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.WriteValue(*(*any)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) (err error) {
			*(*any)(p), err = d.ReadAny()
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return *(*any)(p) == nil }
		return nil
	case typeGenericMap:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.writeMap(*(*map[string]any)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			m, _, _, err := d.readMap()
			*(*map[string]any)(p) = m
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return len(*(*map[string]any)(p)) == 0 }
		return nil
	case typeGenericList:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.writeArray(*(*[]any)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			a, err := d.readArray()
			*(*[]any)(p) = a
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return len(*(*[]any)(p)) == 0 }
		return nil
	}

	switch t.Kind() {
	case reflect.String:
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.WriteString(*(*string)(p)) }
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			i, j, err := d.readText("a string")
			if err == nil {
				*(*string)(p) = d.substr(i, j)
			}
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return len(*(*string)(p)) == 0 }
	case reflect.Bool:
		c.enc = func(e *Encoder, p unsafe.Pointer) error {
			e.WriteBool(*(*bool)(p))
			return nil
		}
		c.dec = func(d *Decoder, p unsafe.Pointer) (err error) {
			*(*bool)(p), err = d.ReadBool()
			return err
		}
		c.empty = func(p unsafe.Pointer) bool { return !*(*bool)(p) }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		fillIntCodec(c, t)
	case reflect.Pointer:
		return fillPointerCodec(c, t, building)
	case reflect.Slice:
		return fillSliceCodec(c, t, building)
	case reflect.Map:
		return fillMapCodec(c, t, building)
	case reflect.Struct:
		return fillStructCodec(c, t, building)
	case reflect.Interface:
		// A non-empty interface can be written from its dynamic value but
		// not read: there is no way to pick a concrete type.
		c.enc = func(e *Encoder, p unsafe.Pointer) error {
			return e.WriteValue(reflect.NewAt(t, p).Elem().Interface())
		}
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			return d.errorf(d.off, "cannot decode into interface type %s", t)
		}
		c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsNil() }
	case reflect.Float32, reflect.Float64:
		return fmt.Errorf("data: cbor: type %s: floats are not allowed in the data model", t)
	default:
		return fmt.Errorf("data: cbor: type %s is not supported", t)
	}
	return nil
}

func fillIntCodec(c *codec, t reflect.Type) {
	size := t.Size()
	if k := t.Kind(); k >= reflect.Int && k <= reflect.Int64 {
		lo, hi := int64(math.MinInt64)>>(64-8*size), int64(math.MaxInt64)>>(64-8*size)
		get := func(p unsafe.Pointer) int64 {
			switch size {
			case 1:
				return int64(*(*int8)(p))
			case 2:
				return int64(*(*int16)(p))
			case 4:
				return int64(*(*int32)(p))
			}
			return *(*int64)(p)
		}
		c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.WriteInt(get(p)) }
		c.empty = func(p unsafe.Pointer) bool { return get(p) == 0 }
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			start := d.off
			v, err := d.ReadInt()
			if err != nil {
				return err
			}
			if v < lo || v > hi {
				return d.errorf(start, "integer %d does not fit in %s", v, t)
			}
			switch size {
			case 1:
				*(*int8)(p) = int8(v)
			case 2:
				*(*int16)(p) = int16(v)
			case 4:
				*(*int32)(p) = int32(v)
			default:
				*(*int64)(p) = v
			}
			return nil
		}
		return
	}
	hi := uint64(math.MaxUint64) >> (64 - 8*size)
	get := func(p unsafe.Pointer) uint64 {
		switch size {
		case 1:
			return uint64(*(*uint8)(p))
		case 2:
			return uint64(*(*uint16)(p))
		case 4:
			return uint64(*(*uint32)(p))
		}
		return *(*uint64)(p)
	}
	c.enc = func(e *Encoder, p unsafe.Pointer) error { return e.writeUint(get(p)) }
	c.empty = func(p unsafe.Pointer) bool { return get(p) == 0 }
	c.dec = func(d *Decoder, p unsafe.Pointer) error {
		start := d.off
		v, err := d.ReadInt()
		if err != nil {
			return err
		}
		if v < 0 || uint64(v) > hi {
			return d.errorf(start, "integer %d does not fit in %s", v, t)
		}
		switch size {
		case 1:
			*(*uint8)(p) = uint8(v)
		case 2:
			*(*uint16)(p) = uint16(v)
		case 4:
			*(*uint32)(p) = uint32(v)
		default:
			*(*uint64)(p) = uint64(v)
		}
		return nil
	}
}

func fillPointerCodec(c *codec, t reflect.Type, building map[reflect.Type]*codec) error {
	elem := t.Elem()
	ec, err := buildCodec(elem, building)
	if err != nil {
		return err
	}
	c.enc = func(e *Encoder, p unsafe.Pointer) error {
		ptr := *(*unsafe.Pointer)(p)
		if ptr == nil {
			e.WriteNull()
			return nil
		}
		return ec.enc(e, ptr)
	}
	c.dec = func(d *Decoder, p unsafe.Pointer) error {
		if d.PeekNull() {
			d.off++
			*(*unsafe.Pointer)(p) = nil
			return nil
		}
		np := reflect.New(elem).UnsafePointer()
		if err := ec.dec(d, np); err != nil {
			return err
		}
		*(*unsafe.Pointer)(p) = np
		return nil
	}
	c.empty = func(p unsafe.Pointer) bool { return *(*unsafe.Pointer)(p) == nil }
	return nil
}

func fillSliceCodec(c *codec, t reflect.Type, building map[reflect.Type]*codec) error {
	elem := t.Elem()
	c.empty = func(p unsafe.Pointer) bool { return (*sliceHeader)(p).len == 0 }
	if elem.Kind() == reflect.Uint8 && !reflect.PointerTo(elem).Implements(typeMarshaler) {
		c.enc = func(e *Encoder, p unsafe.Pointer) error {
			e.WriteBytes(*(*[]byte)(p))
			return nil
		}
		c.dec = func(d *Decoder, p unsafe.Pointer) error {
			b, err := d.ReadBytes()
			*(*[]byte)(p) = b
			return err
		}
		return nil
	}
	ec, err := buildCodec(elem, building)
	if err != nil {
		return err
	}
	size := elem.Size()
	c.enc = func(e *Encoder, p unsafe.Pointer) error {
		s := (*sliceHeader)(p)
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.WriteArrayHeader(s.len); err != nil {
			return err
		}
		for i := 0; i < s.len; i++ {
			if err := ec.enc(e, unsafe.Add(s.data, uintptr(i)*size)); err != nil {
				return err
			}
		}
		e.depth--
		return nil
	}
	c.dec = func(d *Decoder, p unsafe.Pointer) error {
		n, err := d.ReadArrayHeader()
		if err != nil {
			return err
		}
		if err := d.Enter(); err != nil {
			return err
		}
		if n == 0 {
			*(*sliceHeader)(p) = sliceHeader{}
			d.Leave()
			return nil
		}
		// Grow the (emptied) slice in place: one allocation, for the
		// elements only.
		*(*sliceHeader)(p) = sliceHeader{}
		v := reflect.NewAt(t, p).Elem()
		v.Grow(n)
		v.SetLen(n)
		base := (*sliceHeader)(p).data
		for i := 0; i < n; i++ {
			if err := ec.dec(d, unsafe.Add(base, uintptr(i)*size)); err != nil {
				return err
			}
		}
		d.Leave()
		return nil
	}
	return nil
}

func fillMapCodec(c *codec, t reflect.Type, building map[reflect.Type]*codec) error {
	if t.Key().Kind() != reflect.String {
		return fmt.Errorf("data: cbor: type %s: map keys must be strings", t)
	}
	elem := t.Elem()
	ec, err := buildCodec(elem, building)
	if err != nil {
		return err
	}
	c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().Len() == 0 }
	c.enc = func(e *Encoder, p unsafe.Pointer) error {
		m := reflect.NewAt(t, p).Elem()
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.WriteMapHeader(m.Len()); err != nil {
			return err
		}
		keys := make([]string, 0, m.Len())
		for it := m.MapRange(); it.Next(); {
			keys = append(keys, it.Key().String())
		}
		cborSortKeys(keys)
		tmp := reflect.New(elem)
		kv := reflect.New(t.Key()).Elem()
		for _, k := range keys {
			if err := e.WriteKey(k); err != nil {
				return err
			}
			kv.SetString(k)
			val := m.MapIndex(kv)
			if k == typeKey {
				if err := checkTypeValue(val); err != nil {
					return err
				}
			}
			tmp.Elem().Set(val)
			if err := ec.enc(e, tmp.UnsafePointer()); err != nil {
				return err
			}
		}
		e.depth--
		return nil
	}
	c.dec = func(d *Decoder, p unsafe.Pointer) error {
		n, err := d.ReadMapHeader()
		if err != nil {
			return err
		}
		if err := d.Enter(); err != nil {
			return err
		}
		m := reflect.MakeMapWithSize(t, n)
		kv := reflect.New(t.Key()).Elem()
		var prev []byte
		for i := 0; i < n; i++ {
			k, err := d.ReadMapKey(prev)
			if err != nil {
				return err
			}
			prev = k
			if string(k) == typeKey {
				if err := d.checkTypeItem(); err != nil {
					return err
				}
			}
			kv.SetString(d.substr(d.off-len(k), d.off))
			tmp := reflect.New(elem)
			if err := ec.dec(d, tmp.UnsafePointer()); err != nil {
				return err
			}
			m.SetMapIndex(kv, tmp.Elem())
		}
		reflect.NewAt(t, p).Elem().Set(m)
		d.Leave()
		return nil
	}
	return nil
}

// checkTypeValue checks the "$type" entry of a typed map when writing.
func checkTypeValue(v reflect.Value) error {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return cborEncErr("$type must be a string, not null")
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.String {
		return cborEncErr("$type must be a string, not a Go %s", v.Type())
	}
	if v.Len() == 0 {
		return cborEncErr("$type must not be empty")
	}
	return nil
}

// checkTypeItem checks, without reading it, that the next item is a
// non-empty string, as the value of "$type" must be.
func (d *Decoder) checkTypeItem() error {
	if d.off >= len(d.buf) {
		return d.errorf(d.off, "unexpected end of input")
	}
	c := d.buf[d.off]
	if c>>5 != majorText {
		return d.errorf(d.off, "$type must be a string, not %s", d.describe(d.off))
	}
	if c == 0x60 {
		return d.errorf(d.off, "$type must not be empty")
	}
	return nil
}

func fillStructCodec(c *codec, t reflect.Type, building map[reflect.Type]*codec) error {
	var fields []fieldCodec
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("cbor")
		if tag == "" {
			tag = sf.Tag.Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if sf.Anonymous && tag == "" {
			return fmt.Errorf("data: cbor: type %s: embedded field %s needs a tag (embedding is not flattened)", t, sf.Name)
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if len(name) > MaxKeyLen || !utf8.ValidString(name) {
			return fmt.Errorf("data: cbor: type %s: field %s has an invalid key", t, sf.Name)
		}
		fc, err := buildCodec(sf.Type, building)
		if err != nil {
			return err
		}
		f := fieldCodec{
			name:      name,
			key:       append(appendHead(nil, majorText, uint64(len(name))), name...),
			offset:    sf.Offset,
			omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty"),
			isType:    name == typeKey,
			c:         fc,
		}
		if f.isType && sf.Type.Kind() != reflect.String {
			return fmt.Errorf("data: cbor: type %s: the $type field must be a string", t)
		}
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b fieldCodec) int { return cborKeyCompare(a.name, b.name) })
	for i := 1; i < len(fields); i++ {
		if fields[i].name == fields[i-1].name {
			return fmt.Errorf("data: cbor: type %s: two fields named %q", t, fields[i].name)
		}
	}
	if len(fields) > MaxContainerLen {
		return fmt.Errorf("data: cbor: type %s has too many fields", t)
	}

	c.empty = func(p unsafe.Pointer) bool { return reflect.NewAt(t, p).Elem().IsZero() }
	c.enc = func(e *Encoder, p unsafe.Pointer) error {
		n := 0
		for i := range fields {
			f := &fields[i]
			if !f.omitEmpty || !f.c.empty(unsafe.Add(p, f.offset)) {
				n++
			}
		}
		if err := e.enter(); err != nil {
			return err
		}
		e.writeHead(majorMap, uint64(n))
		for i := range fields {
			f := &fields[i]
			fp := unsafe.Add(p, f.offset)
			if f.omitEmpty && f.c.empty(fp) {
				continue
			}
			if f.isType && len(*(*string)(fp)) == 0 {
				return cborEncErr("%s: $type must not be empty", t)
			}
			e.buf = append(e.buf, f.key...)
			if err := f.c.enc(e, fp); err != nil {
				return err
			}
		}
		e.depth--
		return nil
	}
	c.dec = func(d *Decoder, p unsafe.Pointer) error {
		n, err := d.ReadMapHeader()
		if err != nil {
			return err
		}
		if err := d.Enter(); err != nil {
			return err
		}
		reflect.NewAt(t, p).Elem().SetZero()
		var prev []byte
		fi := 0
		for i := 0; i < n; i++ {
			k, err := d.ReadMapKey(prev)
			if err != nil {
				return err
			}
			prev = k
			// Keys and fields are both in canonical order: walk them
			// together instead of looking keys up.
			for fi < len(fields) && (len(fields[fi].name) < len(k) ||
				len(fields[fi].name) == len(k) && fields[fi].name < string(k)) {
				fi++
			}
			if string(k) == typeKey {
				if err := d.checkTypeItem(); err != nil {
					return err
				}
			}
			if fi < len(fields) && fields[fi].name == string(k) {
				f := &fields[fi]
				fi++
				if err := f.c.dec(d, unsafe.Add(p, f.offset)); err != nil {
					return err
				}
				continue
			}
			if err := d.Skip(); err != nil {
				return err
			}
		}
		d.Leave()
		return nil
	}
	return nil
}

// writeReflect writes a value of a type WriteValue has no case for.
func (e *Encoder) writeReflect(v any) error {
	rv := reflect.ValueOf(v)
	t := rv.Type()
	if t.Kind() == reflect.Pointer {
		c, err := codecFor(t.Elem())
		if err != nil {
			return err
		}
		if rv.IsNil() {
			e.WriteNull()
			return nil
		}
		return c.enc(e, rv.UnsafePointer())
	}
	c, err := codecFor(t)
	if err != nil {
		return err
	}
	tmp := reflect.New(t)
	tmp.Elem().Set(rv)
	return c.enc(e, tmp.UnsafePointer())
}

// decodeInto decodes one item into the value v points to.
func (d *Decoder) decodeInto(v any) error {
	if u, ok := v.(CBORUnmarshaler); ok {
		return u.UnmarshalDAGCBOR(d)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("data: cbor: decoding needs a non-nil pointer, not %T", v)
	}
	c, err := codecFor(rv.Type().Elem())
	if err != nil {
		return err
	}
	return c.dec(d, rv.UnsafePointer())
}

// DecodeValue decodes the next item into the value v points to, as
// UnmarshalCBORInto does for a whole block.
func (d *Decoder) DecodeValue(v any) error { return d.decodeInto(v) }
