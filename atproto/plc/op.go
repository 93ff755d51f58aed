package plc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// The values of the "type" field of the three operation kinds.
const (
	TypeOperation    = "plc_operation"
	TypeTombstone    = "plc_tombstone"
	TypeLegacyCreate = "create"
)

// Op is one signed (or not yet signed) PLC operation: *Operation,
// *Tombstone or *LegacyCreate. No other type implements it.
type Op interface {
	// Type returns the value of the "type" field.
	Type() string
	// PrevCID returns the prev field: the CID string of the previous
	// operation, or nil for a genesis operation.
	PrevCID() *string
	// Signature returns the sig field; "" when unsigned.
	Signature() string
	// UnsignedBytes is the DAG-CBOR encoding without the sig field: the
	// bytes that are signed.
	UnsignedBytes() ([]byte, error)
	// SignedBytes is the DAG-CBOR encoding with the sig field: the bytes
	// that are hashed for the CID (and, for a genesis operation, the DID).
	SignedBytes() ([]byte, error)
	// Sign signs UnsignedBytes with key and stores the signature in sig,
	// replacing any earlier one.
	Sign(key crypto.PrivateKey) error
	// CID is the CIDv1 (dag-cbor, sha-256) of SignedBytes. It fails with
	// ErrUnsigned on an unsigned operation.
	CID() (data.CID, error)
	// VerifySig reports the index of the first key in keys that verifies
	// the signature (nil entries are skipped). The signature must be
	// canonical base64url without padding, 64 bytes, low-S.
	VerifySig(keys []crypto.PublicKey) (int, error)
	// MarshalJSON writes the operation as the directory does.
	MarshalJSON() ([]byte, error)

	// cborValue returns the generic data-model map of the operation.
	cborValue(withSig bool) map[string]any
}

// Service is one entry of an operation's services map.
type Service struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// Operation is a "plc_operation": a genesis operation (Prev nil) or an
// update.
type Operation struct {
	// RotationKeys are did:key strings in descending order of authority.
	RotationKeys []string
	// VerificationMethods maps ids (without "#") to did:key strings.
	VerificationMethods map[string]string
	AlsoKnownAs         []string
	Services            map[string]Service
	Prev                *string
	Sig                 string
}

// Tombstone is a "plc_tombstone": it deactivates the DID for good.
type Tombstone struct {
	Prev string
	Sig  string
}

// LegacyCreate is the deprecated genesis format, type "create". It is only
// ever valid as the first operation of a log, and its prev is always null.
type LegacyCreate struct {
	SigningKey  string
	RecoveryKey string
	Handle      string
	Service     string
	Sig         string
}

func (*Operation) Type() string    { return TypeOperation }
func (*Tombstone) Type() string    { return TypeTombstone }
func (*LegacyCreate) Type() string { return TypeLegacyCreate }

func (o *Operation) PrevCID() *string  { return o.Prev }
func (o *Tombstone) PrevCID() *string  { p := o.Prev; return &p }
func (*LegacyCreate) PrevCID() *string { return nil }

func (o *Operation) Signature() string    { return o.Sig }
func (o *Tombstone) Signature() string    { return o.Sig }
func (o *LegacyCreate) Signature() string { return o.Sig }

func stringList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (o *Operation) cborValue(withSig bool) map[string]any {
	vms := make(map[string]any, len(o.VerificationMethods))
	for k, v := range o.VerificationMethods {
		vms[k] = v
	}
	svcs := make(map[string]any, len(o.Services))
	for k, s := range o.Services {
		svcs[k] = map[string]any{"type": s.Type, "endpoint": s.Endpoint}
	}
	m := map[string]any{
		"type":                TypeOperation,
		"rotationKeys":        stringList(o.RotationKeys),
		"verificationMethods": vms,
		"alsoKnownAs":         stringList(o.AlsoKnownAs),
		"services":            svcs,
		"prev":                nil,
	}
	if o.Prev != nil {
		m["prev"] = *o.Prev
	}
	if withSig {
		m["sig"] = o.Sig
	}
	return m
}

func (o *Tombstone) cborValue(withSig bool) map[string]any {
	m := map[string]any{"type": TypeTombstone, "prev": o.Prev}
	if withSig {
		m["sig"] = o.Sig
	}
	return m
}

func (o *LegacyCreate) cborValue(withSig bool) map[string]any {
	m := map[string]any{
		"type":        TypeLegacyCreate,
		"signingKey":  o.SigningKey,
		"recoveryKey": o.RecoveryKey,
		"handle":      o.Handle,
		"service":     o.Service,
		"prev":        nil,
	}
	if withSig {
		m["sig"] = o.Sig
	}
	return m
}

// isNil reports whether op is nil or a nil pointer of one of the
// operation types.
func isNil(op Op) bool {
	switch o := op.(type) {
	case nil:
		return true
	case *Operation:
		return o == nil
	case *Tombstone:
		return o == nil
	case *LegacyCreate:
		return o == nil
	}
	return false
}

func encodeOp(op Op, withSig bool) ([]byte, error) {
	if isNil(op) {
		return nil, errf(ErrMalformedOp, "nil operation")
	}
	if withSig && op.Signature() == "" {
		return nil, errf(ErrUnsigned, "%s has no sig", op.Type())
	}
	b, err := data.MarshalCBOR(op.cborValue(withSig))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedOp, err)
	}
	return b, nil
}

func (o *Operation) UnsignedBytes() ([]byte, error)    { return encodeOp(o, false) }
func (o *Tombstone) UnsignedBytes() ([]byte, error)    { return encodeOp(o, false) }
func (o *LegacyCreate) UnsignedBytes() ([]byte, error) { return encodeOp(o, false) }

func (o *Operation) SignedBytes() ([]byte, error)    { return encodeOp(o, true) }
func (o *Tombstone) SignedBytes() ([]byte, error)    { return encodeOp(o, true) }
func (o *LegacyCreate) SignedBytes() ([]byte, error) { return encodeOp(o, true) }

func signOp(op Op, key crypto.PrivateKey) (string, error) {
	if isNil(op) {
		return "", errf(ErrMalformedOp, "nil operation")
	}
	if key == nil {
		return "", errors.New("plc: nil signing key")
	}
	msg, err := op.UnsignedBytes()
	if err != nil {
		return "", err
	}
	sig, err := key.HashAndSign(msg)
	if err != nil {
		return "", fmt.Errorf("plc: signing: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

func (o *Operation) Sign(key crypto.PrivateKey) error {
	s, err := signOp(o, key)
	if err == nil {
		o.Sig = s
	}
	return err
}

func (o *Tombstone) Sign(key crypto.PrivateKey) error {
	s, err := signOp(o, key)
	if err == nil {
		o.Sig = s
	}
	return err
}

func (o *LegacyCreate) Sign(key crypto.PrivateKey) error {
	s, err := signOp(o, key)
	if err == nil {
		o.Sig = s
	}
	return err
}

func cidOf(op Op) (data.CID, error) {
	b, err := op.SignedBytes()
	if err != nil {
		return data.CID{}, err
	}
	return data.CIDForCBOR(b), nil
}

func (o *Operation) CID() (data.CID, error)    { return cidOf(o) }
func (o *Tombstone) CID() (data.CID, error)    { return cidOf(o) }
func (o *LegacyCreate) CID() (data.CID, error) { return cidOf(o) }

// decodeSig decodes a sig field strictly: only the base64url alphabet, no
// padding characters, no whitespace, and zero trailing bits.
func decodeSig(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrUnsigned
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return nil, errf(ErrInvalidSignature, "sig has byte %q at offset %d, outside unpadded base64url", c, i)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errf(ErrInvalidSignature, "sig is not canonical base64url: %v", err)
	}
	return b, nil
}

func verifyOp(op Op, keys []crypto.PublicKey) (int, error) {
	if isNil(op) {
		return -1, errf(ErrMalformedOp, "nil operation")
	}
	sig, err := decodeSig(op.Signature())
	if err != nil {
		return -1, err
	}
	msg, err := op.UnsignedBytes()
	if err != nil {
		return -1, err
	}
	highS := false
	for i, k := range keys {
		if k == nil {
			continue
		}
		err := k.HashAndVerify(msg, sig)
		if err == nil {
			return i, nil
		}
		if errors.Is(err, crypto.ErrHighS) {
			highS = true
		}
	}
	if highS {
		return -1, errf(ErrInvalidSignature, "high-S signature on %s", op.Type())
	}
	return -1, errf(ErrInvalidSignature, "no allowed rotation key (of %d) verifies the %s signature", len(keys), op.Type())
}

func (o *Operation) VerifySig(keys []crypto.PublicKey) (int, error)    { return verifyOp(o, keys) }
func (o *Tombstone) VerifySig(keys []crypto.PublicKey) (int, error)    { return verifyOp(o, keys) }
func (o *LegacyCreate) VerifySig(keys []crypto.PublicKey) (int, error) { return verifyOp(o, keys) }

// ParseDIDKeys parses did:key strings into public keys, index for index. A
// string that is not a did:key of a supported curve becomes nil, which
// VerifySig skips; so indices stay those of the original list, which matters
// for rotation key priority.
func ParseDIDKeys(keys []string) []crypto.PublicKey {
	out := make([]crypto.PublicKey, len(keys))
	for i, k := range keys {
		pk, err := crypto.ParsePublicDIDKey(k)
		if err == nil {
			out[i] = pk
		}
	}
	return out
}

// VerifySigDIDKeys is VerifySig with the keys given as did:key strings, as
// they appear in rotationKeys.
func VerifySigDIDKeys(op Op, keys []string) (int, error) {
	if isNil(op) {
		return -1, errf(ErrMalformedOp, "nil operation")
	}
	return op.VerifySig(ParseDIDKeys(keys))
}

// ---- JSON ----

type operationJSON struct {
	Type                string             `json:"type"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	RotationKeys        []string           `json:"rotationKeys"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
	Prev                *string            `json:"prev"`
	Sig                 string             `json:"sig,omitempty"`
}

type tombstoneJSON struct {
	Type string `json:"type"`
	Prev string `json:"prev"`
	Sig  string `json:"sig,omitempty"`
}

type legacyCreateJSON struct {
	Type        string  `json:"type"`
	SigningKey  string  `json:"signingKey"`
	RecoveryKey string  `json:"recoveryKey"`
	Handle      string  `json:"handle"`
	Service     string  `json:"service"`
	Prev        *string `json:"prev"`
	Sig         string  `json:"sig,omitempty"`
}

// marshalNoEscape encodes v without HTML escaping and without the trailing
// newline, after checking that every string in the generic form of op is
// valid UTF-8 (encoding/json would silently replace bad bytes).
func marshalNoEscape(op Op, v any) ([]byte, error) {
	if err := checkUTF8(op.cborValue(true)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkUTF8(v any) error {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return errf(ErrMalformedOp, "string %q is not valid UTF-8", x)
		}
	case []any:
		for _, e := range x {
			if err := checkUTF8(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if err := checkUTF8(k); err != nil {
				return err
			}
			if err := checkUTF8(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func nonNilList(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// MarshalJSON writes the fields in the order the reference implementation
// builds them: type, verificationMethods, rotationKeys, alsoKnownAs,
// services, prev, sig. Map keys are sorted; sig is left out when empty.
func (o *Operation) MarshalJSON() ([]byte, error) {
	vms := o.VerificationMethods
	if vms == nil {
		vms = map[string]string{}
	}
	svcs := o.Services
	if svcs == nil {
		svcs = map[string]Service{}
	}
	return marshalNoEscape(o, operationJSON{
		Type:                TypeOperation,
		VerificationMethods: vms,
		RotationKeys:        nonNilList(o.RotationKeys),
		AlsoKnownAs:         nonNilList(o.AlsoKnownAs),
		Services:            svcs,
		Prev:                o.Prev,
		Sig:                 o.Sig,
	})
}

func (o *Tombstone) MarshalJSON() ([]byte, error) {
	return marshalNoEscape(o, tombstoneJSON{Type: TypeTombstone, Prev: o.Prev, Sig: o.Sig})
}

func (o *LegacyCreate) MarshalJSON() ([]byte, error) {
	return marshalNoEscape(o, legacyCreateJSON{
		Type:        TypeLegacyCreate,
		SigningKey:  o.SigningKey,
		RecoveryKey: o.RecoveryKey,
		Handle:      o.Handle,
		Service:     o.Service,
		Sig:         o.Sig,
	})
}

// ParseOperationJSON reads one operation of any of the three types from
// JSON. The parse is strict: the JSON must be well formed (no duplicate
// keys), "type" must be one of the three known values, every field of that
// type must be present with the right JSON type, no other field may appear,
// and prev, when a string, must be a CID. The "sig" field may be absent (an
// unsigned operation) but not empty. Errors match ErrMalformedOp.
//
// Keys and URLs are not checked here; signature verification and
// CheckNewOpLimits do that.
func ParseOperationJSON(b []byte) (Op, error) {
	m, err := data.ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedOp, err)
	}
	return opFromMap(m)
}

func opFromMap(m map[string]any) (Op, error) {
	rawType, ok := m["type"]
	if !ok {
		return nil, errf(ErrMalformedOp, `missing "type" field`)
	}
	typ, ok := rawType.(string)
	if !ok {
		return nil, errf(ErrMalformedOp, `"type" must be a string, got %s`, kindName(rawType))
	}
	var allowed []string
	switch typ {
	case TypeOperation:
		allowed = []string{"type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev", "sig"}
	case TypeTombstone:
		allowed = []string{"type", "prev", "sig"}
	case TypeLegacyCreate:
		allowed = []string{"type", "signingKey", "recoveryKey", "handle", "service", "prev", "sig"}
	default:
		return nil, errf(ErrMalformedOp, "unknown operation type %q", typ)
	}
	if err := onlyFields(m, typ, allowed); err != nil {
		return nil, err
	}
	f := fieldReader{m: m, typ: typ}
	sig := f.sig()
	switch typ {
	case TypeOperation:
		op := &Operation{
			RotationKeys:        f.stringList("rotationKeys"),
			VerificationMethods: f.stringMap("verificationMethods"),
			AlsoKnownAs:         f.stringList("alsoKnownAs"),
			Services:            f.services("services"),
			Prev:                f.prev(true),
			Sig:                 sig,
		}
		if f.err != nil {
			return nil, f.err
		}
		return op, nil
	case TypeTombstone:
		prev := f.prev(false)
		if f.err != nil {
			return nil, f.err
		}
		return &Tombstone{Prev: *prev, Sig: sig}, nil
	default:
		op := &LegacyCreate{
			SigningKey:  f.str("signingKey"),
			RecoveryKey: f.str("recoveryKey"),
			Handle:      f.str("handle"),
			Service:     f.str("service"),
			Sig:         sig,
		}
		if p := f.prev(true); f.err == nil && p != nil {
			f.fail(`"prev" of a create operation must be null`)
		}
		if f.err != nil {
			return nil, f.err
		}
		return op, nil
	}
}

func onlyFields(m map[string]any, typ string, allowed []string) error {
	var extra []string
	for k := range m {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return errf(ErrMalformedOp, "%s has unknown field(s) %q", typ, extra)
	}
	return nil
}

// fieldReader extracts typed fields, remembering the first failure.
type fieldReader struct {
	m   map[string]any
	typ string
	err error
}

func (f *fieldReader) fail(format string, args ...any) {
	if f.err == nil {
		f.err = errf(ErrMalformedOp, "%s: %s", f.typ, fmt.Sprintf(format, args...))
	}
}

func (f *fieldReader) get(name string) (any, bool) {
	v, ok := f.m[name]
	if !ok {
		f.fail("missing %q field", name)
	}
	return v, ok
}

func (f *fieldReader) str(name string) string {
	v, ok := f.get(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail("%q must be a string, got %s", name, kindName(v))
	}
	return s
}

func (f *fieldReader) sig() string {
	v, ok := f.m["sig"]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(`"sig" must be a string, got %s`, kindName(v))
		return ""
	}
	if s == "" {
		f.fail(`"sig" is empty`)
	}
	return s
}

func (f *fieldReader) prev(nullable bool) *string {
	v, ok := f.get("prev")
	if !ok {
		return nil
	}
	if v == nil {
		if !nullable {
			f.fail(`"prev" must be a CID string, not null`)
		}
		return nil
	}
	s, ok := v.(string)
	if !ok {
		f.fail(`"prev" must be a string or null, got %s`, kindName(v))
		return nil
	}
	if _, err := data.ParseCID(s); err != nil {
		f.fail(`"prev" is not a CID: %v`, err)
		return nil
	}
	return &s
}

func (f *fieldReader) stringList(name string) []string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		f.fail("%q must be an array, got %s", name, kindName(v))
		return nil
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			f.fail("%q[%d] must be a string, got %s", name, i, kindName(e))
			return nil
		}
		out[i] = s
	}
	return out
}

func (f *fieldReader) stringMap(name string) map[string]string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		f.fail("%q must be an object, got %s", name, kindName(v))
		return nil
	}
	out := make(map[string]string, len(obj))
	for k, e := range obj {
		s, ok := e.(string)
		if !ok {
			f.fail("%q[%q] must be a string, got %s", name, k, kindName(e))
			return nil
		}
		out[k] = s
	}
	return out
}

func (f *fieldReader) services(name string) map[string]Service {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		f.fail("%q must be an object, got %s", name, kindName(v))
		return nil
	}
	out := make(map[string]Service, len(obj))
	for k, e := range obj {
		so, ok := e.(map[string]any)
		if !ok {
			f.fail("%q[%q] must be an object, got %s", name, k, kindName(e))
			return nil
		}
		var extra []string
		for sk := range so {
			if sk != "type" && sk != "endpoint" {
				extra = append(extra, sk)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			f.fail("%q[%q] has unknown field(s) %q", name, k, extra)
			return nil
		}
		t, tok := so["type"].(string)
		ep, eok := so["endpoint"].(string)
		if !tok || !eok {
			f.fail(`%q[%q] needs string "type" and "endpoint" fields`, name, k)
			return nil
		}
		out[k] = Service{Type: t, Endpoint: ep}
	}
	return out
}

func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case data.CID:
		return "link"
	case data.Bytes:
		return "bytes"
	case data.Blob:
		return "blob"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "data.")
}
