package lexicon

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rivo/uniseg"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Flags adjust validation. The zero value applies the rules of the Lexicon
// specification as written; see Strict and Lenient for the two named modes.
type Flags uint32

const (
	// RejectUnknownFields refuses object fields the schema does not declare
	// ("$type" excepted), and query parameters it does not declare. The
	// specification says unexpected fields "should be ignored ... at worst
	// as warnings" so that schemas can evolve, which is the default.
	RejectUnknownFields Flags = 1 << iota
	// RequireKnownUnionTypes refuses open-union variants whose "$type" the
	// catalog can not resolve. By default such variants are accepted, as
	// the specification asks of open unions, and validated only when the
	// catalog knows their schema.
	RequireKnownUnionTypes
	// AllowLegacyBlob accepts blobs in the legacy {"cid", "mimeType"} form
	// that early records hold.
	AllowLegacyBlob
	// AllowLenientDatetime accepts datetimes written by looser software
	// (see syntax.ParseDatetimeLenient): a missing timezone, a space instead
	// of 'T', and the like.
	AllowLenientDatetime
)

const (
	// Strict is the mode for data this host writes or accepts from its own
	// clients: undeclared fields and unresolvable union variants are refused.
	Strict = RejectUnknownFields | RequireKnownUnionTypes
	// Lenient is the mode for reading old data from the network: legacy
	// blobs and loose datetimes are accepted.
	Lenient = AllowLegacyBlob | AllowLenientDatetime
)

// ValidationError reports data that does not match its schema. Path leads
// from the root of the validated value to the fault, with dots between field
// names and [i] for array elements, such as "reply.root.uri" or
// "facets[0].features[1].uri". It is "" for the root itself.
type ValidationError struct {
	Path    string
	Message string
	// Err is the underlying cause when there is one, such as a
	// *syntax.Error or ErrNotFound.
	Err error
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

func (e *ValidationError) Unwrap() error { return e.Err }

// under puts e below the path segment seg: a field name or "[i]".
func (e *ValidationError) under(seg string) *ValidationError {
	switch {
	case e.Path == "":
		e.Path = seg
	case e.Path[0] == '[':
		e.Path = seg + e.Path
	default:
		e.Path = seg + "." + e.Path
	}
	return e
}

func verr(format string, args ...any) *ValidationError {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is wrapped by errors for references, collections and
// endpoints the catalog does not know.
var ErrNotFound = errors.New("schema not found")

// kindName names the data-model kind of a generic value for messages.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64, int:
		return "integer"
	case string:
		return "string"
	case data.Bytes, []byte:
		return "bytes"
	case data.CID:
		return "cid-link"
	case data.Blob:
		return "blob"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("unsupported Go type %T", v)
}

func wrongKind(want string, v any) *ValidationError {
	return verr("expected %s, found %s", want, kindName(v))
}

// validator is one compiled schema node. Implementations are pointers
// built once per definition by the catalog's linker; references between
// definitions are direct pointers, so validation never looks a schema up by
// name except for open-union variants outside the union's list.
type validator interface {
	validate(v any, f Flags, l *linked) *ValidationError
}

// ---- boolean

type boolV struct {
	hasConst bool
	constV   bool
}

func (b *boolV) validate(v any, _ Flags, _ *linked) *ValidationError {
	x, ok := v.(bool)
	if !ok {
		return wrongKind("a boolean", v)
	}
	if b.hasConst && x != b.constV {
		return verr("value must be %v", b.constV)
	}
	return nil
}

// ---- integer

type intV struct {
	s *Integer
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

func (iv *intV) validate(v any, _ Flags, _ *linked) *ValidationError {
	x, ok := asInt(v)
	if !ok {
		return wrongKind("an integer", v)
	}
	if msg := checkInt(iv.s, x); msg != "" {
		return verr("%s", msg)
	}
	return nil
}

// checkInt returns "" when x satisfies s, else what is wrong.
func checkInt(s *Integer, x int64) string {
	if s.Const != nil && x != *s.Const {
		return fmt.Sprintf("value %d must be %d", x, *s.Const)
	}
	if s.Enum != nil {
		found := false
		for _, e := range s.Enum {
			if e == x {
				found = true
				break
			}
		}
		if !found {
			return fmt.Sprintf("value %d is not one of %v", x, s.Enum)
		}
	}
	if s.Minimum != nil && x < *s.Minimum {
		return fmt.Sprintf("value %d is below the minimum %d", x, *s.Minimum)
	}
	if s.Maximum != nil && x > *s.Maximum {
		return fmt.Sprintf("value %d is above the maximum %d", x, *s.Maximum)
	}
	return ""
}

// ---- string

type formatFunc func(string) error

// formats maps each Lexicon string format to its parser from package
// syntax. The parsers are the broadest the identifier specs allow, as the
// Lexicon spec asks ("the most expansive identifier syntax").
var formats = map[string]formatFunc{
	"at-identifier": func(s string) error { _, err := syntax.ParseAtIdentifier(s); return err },
	"at-uri":        func(s string) error { _, err := syntax.ParseATURI(s); return err },
	"cid":           func(s string) error { _, err := syntax.ParseCID(s); return err },
	"datetime":      func(s string) error { _, err := syntax.ParseDatetime(s); return err },
	"did":           func(s string) error { _, err := syntax.ParseDID(s); return err },
	"handle":        func(s string) error { _, err := syntax.ParseHandle(s); return err },
	"nsid":          func(s string) error { _, err := syntax.ParseNSID(s); return err },
	"tid":           func(s string) error { _, err := syntax.ParseTID(s); return err },
	"record-key":    func(s string) error { _, err := syntax.ParseRecordKey(s); return err },
	"uri":           func(s string) error { _, err := syntax.ParseURI(s); return err },
	"language":      func(s string) error { _, err := syntax.ParseLanguage(s); return err },
}

func lenientDatetime(s string) error { _, err := syntax.ParseDatetimeLenient(s); return err }

type stringV struct {
	minLen, maxLen int // -1: absent
	minG, maxG     int // -1: absent
	enum           []string
	hasConst       bool
	constV         string
	format         string
	check          formatFunc
	datetime       bool
}

func optOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func compileString(s *String) *stringV {
	sv := &stringV{
		minLen: optOr(s.MinLength), maxLen: optOr(s.MaxLength),
		minG: optOr(s.MinGraphemes), maxG: optOr(s.MaxGraphemes),
		enum: s.Enum, format: s.Format, check: formats[s.Format],
		datetime: s.Format == "datetime",
	}
	if s.Const != nil {
		sv.hasConst, sv.constV = true, *s.Const
	}
	return sv
}

// graphemeCount counts extended grapheme clusters (UAX #29). ASCII text,
// the common case, is counted without the segmenter: every byte is one
// cluster except that CR LF is one.
func graphemeCount(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return uniseg.GraphemeClusterCount(s)
		}
		if c == '\n' && i > 0 && s[i-1] == '\r' {
			n--
		}
	}
	return n
}

func (sv *stringV) validate(v any, f Flags, _ *linked) *ValidationError {
	s, ok := v.(string)
	if !ok {
		return wrongKind("a string", v)
	}
	if sv.hasConst && s != sv.constV {
		return verr("value %q must be %q", clip(s), sv.constV)
	}
	if sv.enum != nil {
		found := false
		for _, e := range sv.enum {
			if e == s {
				found = true
				break
			}
		}
		if !found {
			return verr("value %q is not one of %q", clip(s), sv.enum)
		}
	}
	if sv.minLen >= 0 && len(s) < sv.minLen {
		return verr("string is %d bytes long, shorter than the minimum %d", len(s), sv.minLen)
	}
	if sv.maxLen >= 0 && len(s) > sv.maxLen {
		return verr("string is %d bytes long, longer than the maximum %d", len(s), sv.maxLen)
	}
	// A string has at most as many grapheme clusters as bytes, so a string
	// no longer in bytes than maxGraphemes passes it without counting.
	if sv.minG >= 0 || (sv.maxG >= 0 && len(s) > sv.maxG) {
		g := graphemeCount(s)
		if sv.minG >= 0 && g < sv.minG {
			return verr("string is %d graphemes long, shorter than the minimum %d", g, sv.minG)
		}
		if sv.maxG >= 0 && g > sv.maxG {
			return verr("string is %d graphemes long, longer than the maximum %d", g, sv.maxG)
		}
	}
	if sv.check != nil {
		check := sv.check
		if sv.datetime && f&AllowLenientDatetime != 0 {
			check = lenientDatetime
		}
		if err := check(s); err != nil {
			return formatError(sv.format, err)
		}
	}
	return nil
}

var formatLabels = map[string]string{
	"at-identifier": "at-identifier", "at-uri": "AT-URI", "cid": "CID",
	"datetime": "datetime", "did": "DID", "handle": "handle", "nsid": "NSID",
	"tid": "TID", "record-key": "record key", "uri": "URI", "language": "language tag",
}

func formatError(format string, err error) *ValidationError {
	msg := err.Error()
	var se *syntax.Error
	if errors.As(err, &se) {
		msg = fmt.Sprintf("%q: %s", se.Input, se.Reason)
	}
	return &ValidationError{Message: "invalid " + formatLabels[format] + ": " + msg, Err: err}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ---- bytes, cid-link, blob

type bytesV struct{ minLen, maxLen int }

func (bv *bytesV) validate(v any, _ Flags, _ *linked) *ValidationError {
	var n int
	switch b := v.(type) {
	case data.Bytes:
		n = len(b)
	case []byte:
		n = len(b)
	default:
		return wrongKind("bytes", v)
	}
	if bv.minLen >= 0 && n < bv.minLen {
		return verr("bytes are %d long, shorter than the minimum %d", n, bv.minLen)
	}
	if bv.maxLen >= 0 && n > bv.maxLen {
		return verr("bytes are %d long, longer than the maximum %d", n, bv.maxLen)
	}
	return nil
}

type cidV struct{}

func (cidV) validate(v any, _ Flags, _ *linked) *ValidationError {
	c, ok := v.(data.CID)
	if !ok {
		return wrongKind("a cid-link", v)
	}
	if !c.Defined() {
		return verr("undefined CID")
	}
	return nil
}

type blobV struct {
	any      bool     // accept is empty or holds */*
	exact    []string // full MIME types
	prefixes []string // "image/" for "image/*"
	maxSize  int64    // -1: absent
	accept   []string
}

func compileBlob(s *Blob) *blobV {
	bv := &blobV{any: len(s.Accept) == 0, maxSize: -1, accept: s.Accept}
	if s.MaxSize != nil {
		bv.maxSize = *s.MaxSize
	}
	for _, a := range s.Accept {
		switch {
		case a == "*/*":
			bv.any = true
		case strings.HasSuffix(a, "/*"):
			bv.prefixes = append(bv.prefixes, strings.ToLower(a[:len(a)-1]))
		default:
			bv.exact = append(bv.exact, strings.ToLower(a))
		}
	}
	return bv
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (bv *blobV) validate(v any, f Flags, _ *linked) *ValidationError {
	b, ok := v.(data.Blob)
	if !ok {
		return wrongKind("a blob", v)
	}
	if b.Legacy && f&AllowLegacyBlob == 0 {
		return verr("legacy blob (without $type, ref and size) is not allowed")
	}
	if !b.Ref.Defined() {
		return verr("blob has no ref")
	}
	if b.MimeType == "" {
		return verr("blob has no mimeType")
	}
	if !b.Legacy && b.Size < 0 {
		return verr("blob size %d is negative", b.Size)
	}
	if !bv.any {
		mt, _, _ := strings.Cut(b.MimeType, ";")
		mt = strings.TrimSpace(mt)
		ok := false
		for _, p := range bv.prefixes {
			if hasPrefixFold(mt, p) {
				ok = true
				break
			}
		}
		if !ok {
			for _, e := range bv.exact {
				if strings.EqualFold(mt, e) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return verr("blob MIME type %q is not accepted (accept: %q)", clip(b.MimeType), bv.accept)
		}
	}
	if bv.maxSize >= 0 && !b.Legacy && b.Size > bv.maxSize {
		return verr("blob is %d bytes, larger than the maximum %d", b.Size, bv.maxSize)
	}
	return nil
}

// ---- unknown

type unknownV struct{}

func (unknownV) validate(v any, _ Flags, _ *linked) *ValidationError {
	m, ok := v.(map[string]any)
	if !ok {
		return wrongKind("an object", v)
	}
	if t, has := m["$type"]; has {
		if s, ok := t.(string); !ok || s == "" {
			return (&ValidationError{Message: "$type must be a non-empty string"}).under("$type")
		}
	}
	return checkDataModel(m, 0)
}

// checkDataModel checks that a value built by hand (not by the data
// package's decoders) holds only data-model values.
func checkDataModel(v any, depth int) *ValidationError {
	if depth > data.MaxDepth {
		return verr("data nested deeper than %d levels", data.MaxDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, int, string, data.Bytes, []byte, data.CID, data.Blob:
		return nil
	case []any:
		for i, e := range x {
			if err := checkDataModel(e, depth+1); err != nil {
				return err.under("[" + strconv.Itoa(i) + "]")
			}
		}
		return nil
	case map[string]any:
		for k, e := range x {
			if err := checkDataModel(e, depth+1); err != nil {
				return err.under(k)
			}
		}
		return nil
	}
	return verr("value of Go type %T is not in the atproto data model", v)
}

// ---- array

type arrayV struct {
	minLen, maxLen int
	items          validator
}

func (av *arrayV) validate(v any, f Flags, l *linked) *ValidationError {
	arr, ok := v.([]any)
	if !ok {
		return wrongKind("an array", v)
	}
	if av.minLen >= 0 && len(arr) < av.minLen {
		return verr("array has %d elements, fewer than the minimum %d", len(arr), av.minLen)
	}
	if av.maxLen >= 0 && len(arr) > av.maxLen {
		return verr("array has %d elements, more than the maximum %d", len(arr), av.maxLen)
	}
	for i, e := range arr {
		if e == nil {
			return verr("null is not allowed").under("[" + strconv.Itoa(i) + "]")
		}
		if err := av.items.validate(e, f, l); err != nil {
			return err.under("[" + strconv.Itoa(i) + "]")
		}
	}
	return nil
}

// ---- object

type propV struct {
	name     string
	v        validator
	required bool
	nullable bool
}

type objectV struct {
	props  []propV
	byName map[string]struct{}
}

func (ov *objectV) validate(v any, f Flags, l *linked) *ValidationError {
	m, ok := v.(map[string]any)
	if !ok {
		return wrongKind("an object", v)
	}
	return ov.validateMap(m, f, l)
}

func (ov *objectV) validateMap(m map[string]any, f Flags, l *linked) *ValidationError {
	for i := range ov.props {
		p := &ov.props[i]
		val, present := m[p.name]
		if !present {
			if p.required {
				return verr("required field is missing").under(p.name)
			}
			continue
		}
		if val == nil {
			if p.nullable {
				continue
			}
			return verr("null is not allowed (field is not nullable)").under(p.name)
		}
		if err := p.v.validate(val, f, l); err != nil {
			return err.under(p.name)
		}
	}
	if f&RejectUnknownFields != 0 {
		for k := range m {
			if k == "$type" {
				continue
			}
			if _, ok := ov.byName[k]; !ok {
				return verr("field is not declared by the schema").under(k)
			}
		}
	}
	return nil
}

// ---- union

type variant struct {
	typ string // the "$type" value: fully qualified, no "#main"
	obj *objectV
}

type unionV struct {
	closed   bool
	variants []variant
	refs     []string
}

func (uv *unionV) validate(v any, f Flags, l *linked) *ValidationError {
	m, ok := v.(map[string]any)
	if !ok {
		return wrongKind("an object with $type (union)", v)
	}
	tv, has := m["$type"]
	if !has {
		return verr("$type is required in a union variant (one of %q)", uv.refs)
	}
	t, ok := tv.(string)
	if !ok || t == "" {
		return verr("$type must be a non-empty string").under("$type")
	}
	for i := range uv.variants {
		if uv.variants[i].typ == t {
			if obj := uv.variants[i].obj; obj != nil {
				return obj.validateMap(m, f, l)
			}
			if f&RequireKnownUnionTypes != 0 {
				return &ValidationError{Path: "$type", Message: fmt.Sprintf("schema %q is not in the catalog", t), Err: ErrNotFound}
			}
			return nil
		}
	}
	if uv.closed {
		return verr("$type %q is not one of the closed union's types %q", clip(t), uv.refs).under("$type")
	}
	return validateOpenVariant(t, m, f, l)
}

// validateOpenVariant handles an open-union variant not listed in the
// schema: its $type must be a well-formed reference; it is validated against
// its schema when the catalog knows it.
func validateOpenVariant(t string, m map[string]any, f Flags, l *linked) *ValidationError {
	nsid, frag, hasFrag := strings.Cut(t, "#")
	if _, err := syntax.ParseNSID(nsid); err != nil || (hasFrag && (frag == "main" || !validDefName(frag))) {
		return verr("$type %q is not a valid type reference", clip(t)).under("$type")
	}
	var obj *objectV
	if l != nil {
		obj = l.objects[t]
	}
	if obj == nil {
		if f&RequireKnownUnionTypes != 0 {
			return &ValidationError{Path: "$type", Message: fmt.Sprintf("$type %q is not known to the catalog", clip(t)), Err: ErrNotFound}
		}
		return nil
	}
	return obj.validateMap(m, f, l)
}

// ---- record

type recordV struct {
	nsid string
	key  string
	obj  *objectV
}

func (rv *recordV) validate(v any, f Flags, l *linked) *ValidationError {
	m, ok := v.(map[string]any)
	if !ok {
		return wrongKind("an object (record)", v)
	}
	tv, has := m["$type"]
	if !has {
		return verr("record $type is missing (want %q)", rv.nsid).under("$type")
	}
	if t, ok := tv.(string); !ok || t != rv.nsid {
		return verr("record $type must be %q, found %v", rv.nsid, tv).under("$type")
	}
	return rv.obj.validateMap(m, f, l)
}

// ---- unresolved reference

// unresolvedV stands for a reference to a schema document the catalog does
// not hold. Data reaching it fails validation.
type unresolvedV struct{ ref string }

func (u *unresolvedV) validate(any, Flags, *linked) *ValidationError {
	return &ValidationError{Message: fmt.Sprintf("schema %q is not in the catalog", u.ref), Err: ErrNotFound}
}
