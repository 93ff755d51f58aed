package lexicon

import "github.com/welkin-atproto/welkin/atproto/syntax"

// SchemaFile is one parsed and checked Lexicon document.
type SchemaFile struct {
	// Lexicon is the language version; always 1.
	Lexicon int
	// ID is the NSID the document describes.
	ID syntax.NSID
	// Revision is the optional schema revision number.
	Revision *int64
	// Description is the optional overview of the whole document.
	Description string
	// Defs holds every definition by its short name ("main", "defs", ...).
	Defs map[string]*Def
	// DefNames lists the keys of Defs in the order the document wrote them.
	DefNames []string
}

// Def is one named definition of a schema file.
type Def struct {
	// NSID is the ID of the file that holds the definition.
	NSID syntax.NSID
	// Name is the short name under "defs", such as "main" or "replyRef".
	Name string
	// Schema is the definition itself: one of *Record, *Query, *Procedure,
	// *Subscription, *PermissionSet, *Object, *Array, *Token, *String,
	// *Integer, *Boolean, *Bytes, *CIDLink or *Blob.
	Schema Schema
}

// Ref returns the fully qualified reference to the definition: the bare
// NSID for "main", "nsid#name" otherwise. This is also the "$type" value data
// of this definition carries.
func (d *Def) Ref() string {
	if d.Name == "main" {
		return string(d.NSID)
	}
	return string(d.NSID) + "#" + d.Name
}

// Type returns the definition's Lexicon type name, such as "record".
func (d *Def) Type() string { return d.Schema.Type() }

// Schema is any Lexicon schema node. The concrete types are the pointer
// types defined in this file; a type switch over them is exhaustive.
type Schema interface {
	// Type returns the Lexicon "type" name of the node, such as "string".
	Type() string
	// Desc returns the node's description, or "".
	Desc() string
}

// Record describes a repository record type (a "main" definition only).
type Record struct {
	Description string
	// Key is the record key type: "tid", "nsid", "any" or "literal:<value>".
	Key string
	// Record is the schema of the record's object.
	Record *Object
}

// ErrorDef names one error an XRPC endpoint or subscription may return.
type ErrorDef struct {
	Name        string
	Description string
}

// Query describes an XRPC query (HTTP GET).
type Query struct {
	Description string
	Parameters  *Params
	Output      *Body
	Errors      []ErrorDef
}

// Procedure describes an XRPC procedure (HTTP POST).
type Procedure struct {
	Description string
	Parameters  *Params
	Input       *Body
	Output      *Body
	Errors      []ErrorDef
}

// Subscription describes an event stream endpoint (WebSocket).
type Subscription struct {
	Description string
	Parameters  *Params
	Message     Message
	Errors      []ErrorDef
}

// Message describes the messages of a subscription; its schema is always a
// union of refs.
type Message struct {
	Description string
	Schema      *Union
}

// Body describes an HTTP request or response body.
type Body struct {
	Description string
	// Encoding is the MIME type, such as "application/json" or "*/*".
	Encoding string
	// Schema is nil, an *Object, a *Ref or a *Union.
	Schema Schema
}

// Params describes the HTTP query parameters of an endpoint. Properties
// are *Boolean, *Integer, *String, or *Array of one of those.
type Params struct {
	Description string
	Required    []string
	Properties  map[string]Schema
	// PropertyNames lists the keys of Properties in document order.
	PropertyNames []string
}

// PermissionSet describes a bundle of auth permissions (an OAuth scope).
type PermissionSet struct {
	Description string
	Title       string
	// TitleLang maps language codes to localized titles ("title:lang").
	TitleLang   map[string]string
	Detail      string
	DetailLang  map[string]string
	Permissions []*Permission
}

// Permission is one entry of a permission set. The fields that depend on the
// resource type are kept generically in Fields as well, so that resource
// types added later are not lost.
type Permission struct {
	Description string
	Resource    string
	Collection  []string
	Action      []string
	Lxm         []string
	Aud         string
	InheritAud  bool
	// Fields holds every field of the permission except "type", in the
	// generic form (string, bool, int64, []any, map[string]any).
	Fields map[string]any
}

// Object describes a data object with named properties.
type Object struct {
	Description string
	Required    []string
	Nullable    []string
	Properties  map[string]Schema
	// PropertyNames lists the keys of Properties in document order.
	PropertyNames []string
}

// Array describes a list whose elements all match Items.
type Array struct {
	Description string
	Items       Schema
	MinLength   *int
	MaxLength   *int
}

// Token is a named symbol with no data representation.
type Token struct {
	Description string
}

// String describes a Unicode string. MinLength and MaxLength count UTF-8
// bytes; MinGraphemes and MaxGraphemes count extended grapheme clusters.
type String struct {
	Description  string
	Format       string
	MinLength    *int
	MaxLength    *int
	MinGraphemes *int
	MaxGraphemes *int
	Enum         []string
	Const        *string
	Default      *string
	KnownValues  []string
}

// Integer describes a signed integer.
type Integer struct {
	Description string
	Minimum     *int64
	Maximum     *int64
	Enum        []int64
	Const       *int64
	Default     *int64
}

// Boolean describes a boolean.
type Boolean struct {
	Description string
	Const       *bool
	Default     *bool
}

// Bytes describes a byte string; lengths count raw bytes.
type Bytes struct {
	Description string
	MinLength   *int
	MaxLength   *int
}

// CIDLink describes a link (a CID).
type CIDLink struct {
	Description string
}

// Blob describes a blob reference.
type Blob struct {
	Description string
	// Accept lists acceptable MIME types; each may be "type/*" or "*/*".
	// Empty means any type.
	Accept  []string
	MaxSize *int64
}

// Union describes a value that is one of several object or record types,
// told apart by its "$type" field.
type Union struct {
	Description string
	// Refs are the references as written in the schema (possibly "#local").
	Refs []string
	// Targets are Refs fully qualified ("nsid" or "nsid#name"), in the same
	// order.
	Targets []string
	// Closed reports whether the set of variants is fixed.
	Closed bool
}

// Ref points to another definition.
type Ref struct {
	Description string
	// Ref is the reference as written in the schema (possibly "#local").
	Ref string
	// Target is Ref fully qualified: "nsid" for a main definition, or
	// "nsid#name".
	Target string
}

// Unknown describes any data object.
type Unknown struct {
	Description string
}

func (*Record) Type() string        { return "record" }
func (*Query) Type() string         { return "query" }
func (*Procedure) Type() string     { return "procedure" }
func (*Subscription) Type() string  { return "subscription" }
func (*PermissionSet) Type() string { return "permission-set" }
func (*Permission) Type() string    { return "permission" }
func (*Params) Type() string        { return "params" }
func (*Object) Type() string        { return "object" }
func (*Array) Type() string         { return "array" }
func (*Token) Type() string         { return "token" }
func (*String) Type() string        { return "string" }
func (*Integer) Type() string       { return "integer" }
func (*Boolean) Type() string       { return "boolean" }
func (*Bytes) Type() string         { return "bytes" }
func (*CIDLink) Type() string       { return "cid-link" }
func (*Blob) Type() string          { return "blob" }
func (*Union) Type() string         { return "union" }
func (*Ref) Type() string           { return "ref" }
func (*Unknown) Type() string       { return "unknown" }

func (s *Record) Desc() string        { return s.Description }
func (s *Query) Desc() string         { return s.Description }
func (s *Procedure) Desc() string     { return s.Description }
func (s *Subscription) Desc() string  { return s.Description }
func (s *PermissionSet) Desc() string { return s.Description }
func (s *Permission) Desc() string    { return s.Description }
func (s *Params) Desc() string        { return s.Description }
func (s *Object) Desc() string        { return s.Description }
func (s *Array) Desc() string         { return s.Description }
func (s *Token) Desc() string         { return s.Description }
func (s *String) Desc() string        { return s.Description }
func (s *Integer) Desc() string       { return s.Description }
func (s *Boolean) Desc() string       { return s.Description }
func (s *Bytes) Desc() string         { return s.Description }
func (s *CIDLink) Desc() string       { return s.Description }
func (s *Blob) Desc() string          { return s.Description }
func (s *Union) Desc() string         { return s.Description }
func (s *Ref) Desc() string           { return s.Description }
func (s *Unknown) Desc() string       { return s.Description }

// IsRequired reports whether the named property is required.
func (o *Object) IsRequired(name string) bool { return contains(o.Required, name) }

// IsNullable reports whether the named property may be null.
func (o *Object) IsNullable(name string) bool { return contains(o.Nullable, name) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
